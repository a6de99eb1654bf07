"""Make 48x48 web crops look like faces cut from camera photos (numpy + OpenCV, seeded).

FER-2013 faces are tight, clean, mostly frontal web crops.  A face that the indexer cuts
from a camera photo has been through a different chain: often far from the camera (few
pixels, then enlarged to 48x48), out of focus or moving, JPEG-compressed by the camera or
a phone, lit too dark or too bright, noisy at high ISO.  Each face of an epoch gets each
of those degradations with its own probability, in the order a camera applies them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIZE = 48


@dataclass(frozen=True)
class CameraAug:
    """Probability and range of each degradation.  `p=0` turns one off."""
    p_scale: float = 0.35          # seen at a lower resolution, then enlarged back to 48x48
    min_side: int = 14
    p_blur: float = 0.25           # defocus / motion: Gaussian blur
    max_sigma: float = 1.3
    p_gamma: float = 0.5           # exposure and contrast
    gamma_range: tuple[float, float] = (0.6, 1.6)
    contrast_range: tuple[float, float] = (0.6, 1.25)
    p_noise: float = 0.3           # sensor noise, std in grey levels
    max_noise: float = 10.0
    p_jpeg: float = 0.5            # camera / web JPEG
    jpeg_quality: tuple[int, int] = (25, 90)

    def apply(self, faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(N, 48, 48) uint8 -> degraded copy, same shape and dtype."""
        out = np.empty_like(faces)
        for i, face in enumerate(faces):
            out[i] = self._one(face, rng)
        return out

    def _one(self, face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        img = face
        if rng.random() < self.p_scale:
            side = int(rng.integers(self.min_side, SIZE))
            small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
        if rng.random() < self.p_blur:
            img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.4, self.max_sigma)))
        if rng.random() < self.p_gamma:
            x = img.astype(np.float32) / 255.0
            x = np.power(x, float(rng.uniform(*self.gamma_range)))
            mean = float(x.mean())
            x = (x - mean) * float(rng.uniform(*self.contrast_range)) + mean
            img = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if rng.random() < self.p_noise:
            noise = rng.normal(0.0, float(rng.uniform(2.0, self.max_noise)), img.shape)
            img = np.clip(img.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)
        if rng.random() < self.p_jpeg:
            quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        return img


NONE = CameraAug(p_scale=0, p_blur=0, p_gamma=0, p_noise=0, p_jpeg=0)
