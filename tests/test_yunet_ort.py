"""YuNet on ONNX Runtime finds the same faces as cv2.FaceDetectorYN, on real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from indexer.vision import yunet_ort
from indexer.vision.faces import DetectorError, YuNetDetector
from tests.photo_factory import compose, dev_faces

pytestmark = pytest.mark.skipif(not yunet_ort.available(), reason="onnxruntime is not installed")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_same_faces_as_opencv(yunet_onnx, dev_faces_dir):
    """Real photos of many sizes (odd sizes exercise the padding to a multiple of 32), one
    composed photo with three faces: same count, boxes, landmarks and scores, up to the
    small float differences between the two runtimes' convolutions."""
    ort_net = YuNetDetector(yunet_onnx, runtime="onnxruntime")
    cv_net = YuNetDetector(yunet_onnx, runtime="opencv")
    assert ort_net.version.split("/")[1].startswith("onnxruntime-")
    assert cv_net.version.split("/")[1].startswith("opencv-")
    images = [cv2.imread(str(p)) for p in dev_faces(dev_faces_dir, None, 60)]
    images.append(compose(dev_faces(dev_faces_dir, "happy", 3), size=(1001, 563), face_px=230)[0])
    found = 0
    for image in images:
        a = ort_net._raw(image)
        b = cv_net._raw(image)
        b = np.zeros((0, 15), np.float32) if b is None else b
        assert len(a) == len(b)
        a, b = a[np.argsort(-a[:, 14])], b[np.argsort(-b[:, 14])]
        for fa, fb in zip(a, b, strict=True):
            assert _iou(fa[:4], fb[:4]) > 0.97
            assert np.abs(fa[4:14] - fb[4:14]).max() < 3.0  # landmarks, px
            assert abs(fa[14] - fb[14]) < 0.03
        found += len(a)
    assert found >= 60  # nearly every photo has its face: the comparison compared something


def test_no_face_gives_an_empty_list(yunet_onnx):
    """A flat picture, and pictures smaller than one stride or thinner than the padding."""
    net = YuNetDetector(yunet_onnx, runtime="onnxruntime")
    assert net.detect(np.full((240, 320, 3), 128, np.uint8), 24) == []
    rng = np.random.default_rng(0)
    for shape in ((1, 1, 3), (10, 10, 3), (33, 17, 3), (2000, 50, 3), (64, 64)):
        assert net.detect(rng.integers(0, 256, shape, dtype=np.uint8), 12) == []


def test_a_model_that_is_not_yunet_is_refused(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx file")
    with pytest.raises(DetectorError, match="do not load"):
        YuNetDetector(junk, runtime="onnxruntime")
