"""YuNet on ONNX Runtime: the same network and the same pre- and post-processing as OpenCV's
`cv2.FaceDetectorYN` (modules/objdetect/src/face_detect.cpp), about 3x faster on a CPU core.

Detection is the indexer's costliest step after JPEG decoding, so the runtime matters:
OpenCV's DNN module takes ~14 ms for a 720x540 image on one core, ONNX Runtime ~4.5 ms
(`python benchmarks/index_bench.py`).  `tests/test_yunet_ort.py` checks that both give the
same faces.  Used when `onnxruntime` is installed; otherwise faces.py falls back to OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np

from indexer.vision.onnx_shape import OnnxFormatError, free_spatial_dims

STRIDES = (8, 16, 32)
PAD_DIVISOR = 32  # the network's input is padded to a multiple of its largest stride


class FixedInputError(RuntimeError):
    """The model cannot run at other sizes than the one it declares (OpenCV can: use it)."""


def runtime_version() -> str | None:
    """ONNX Runtime's version, or None when it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def available() -> bool:
    return runtime_version() is not None


class YuNetOrt:
    """Returns faces as FaceDetectorYN does: rows of x, y, w, h, 5 landmarks (x, y), score."""

    def __init__(self, data: bytes, score_threshold: float, nms_threshold: float = 0.3, top_k: int = 5000,
                 threads: int = 1) -> None:
        """`data`: the ONNX file's bytes (the caller has read them once, for its digest too)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # no warnings about unused initialisers or declared shapes on stderr
        # every photo has its own size: memory patterns (planned for one shape) only grow the arena
        # (1,500 random sizes: RSS 114 -> 139 MB with them, flat at 107 MB without; same speed)
        options.enable_mem_pattern = False
        self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        names = {o.name for o in self._session.get_outputs()}
        self._outputs = [f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES]
        missing = [n for n in self._outputs if n not in names]
        if missing:
            raise ValueError(f"not a YuNet 2023 model: outputs {', '.join(missing)} missing")
        self.fixed_input = any(isinstance(d, int) for d in self._session.get_inputs()[0].shape[2:])
        if self.fixed_input:  # OpenCV Zoo's 2023mar release: 640x640 declared, any size works
            try:
                data = free_spatial_dims(data)
            except OnnxFormatError as exc:
                raise FixedInputError(f"this YuNet file declares a fixed input size ({exc})") from exc
            self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        try:  # a size that is neither square nor 640: fails here, not on the first photo
            self._session.run(self._outputs, {self._input: np.zeros((1, 3, 96, 160), np.float32)})
        except Exception as exc:  # noqa: BLE001 (ONNX Runtime's own exception types)
            raise FixedInputError(f"this YuNet file runs only at its declared input size: {exc}") from exc
        self.score_threshold, self.nms_threshold, self.top_k = score_threshold, nms_threshold, top_k
        self.runtime = f"onnxruntime {ort.__version__}"

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(N, 15) float32 faces of a BGR uint8 image, best first; empty (0, 15) when none."""
        h, w = image.shape[:2]
        pad_h, pad_w = (-(-h // PAD_DIVISOR) * PAD_DIVISOR), (-(-w // PAD_DIVISOR) * PAD_DIVISOR)
        blob = np.zeros((1, 3, pad_h, pad_w), np.float32)
        blob[0, :, :h, :w] = image.transpose(2, 0, 1)  # BGR, 0..255, as cv2.dnn.blobFromImage leaves it
        outs = dict(zip(self._outputs, self._session.run(self._outputs, {self._input: blob}), strict=True))
        faces = np.concatenate([self._decode(outs, s, pad_w // s, pad_h // s) for s in STRIDES])
        if len(faces) > 1:
            keep = cv2.dnn.NMSBoxes(faces[:, :4].tolist(), faces[:, 14].tolist(), self.score_threshold,
                                    self.nms_threshold, top_k=self.top_k)
            faces = faces[np.array(keep, dtype=int).flatten()]
        return faces

    def _decode(self, outs: dict[str, np.ndarray], stride: int, cols: int, rows: int) -> np.ndarray:
        cls = np.clip(outs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
        obj = np.clip(outs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
        score = np.sqrt(cls * obj)
        idx = np.flatnonzero(score >= self.score_threshold)
        if idx.size == 0:
            return np.zeros((0, 15), np.float32)
        c, r = (idx % cols).astype(np.float32), (idx // cols).astype(np.float32)
        bbox = outs[f"bbox_{stride}"].reshape(-1, 4)[idx]
        kps = outs[f"kps_{stride}"].reshape(-1, 10)[idx]
        bw, bh = np.exp(bbox[:, 2]) * stride, np.exp(bbox[:, 3]) * stride
        cx, cy = (c + bbox[:, 0]) * stride, (r + bbox[:, 1]) * stride
        face = np.empty((idx.size, 15), np.float32)
        face[:, 0], face[:, 1], face[:, 2], face[:, 3] = cx - bw / 2, cy - bh / 2, bw, bh
        face[:, 4:14:2] = (kps[:, 0::2] + c[:, None]) * stride
        face[:, 5:14:2] = (kps[:, 1::2] + r[:, None]) * stride
        face[:, 14] = score[idx]
        return face
