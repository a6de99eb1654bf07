"""YuNet on ONNX Runtime finds the same faces as cv2.FaceDetectorYN, on real photos."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from indexer.vision import yunet_ort
from indexer.vision.faces import DetectorError, YuNetDetector
from indexer.vision.onnx_shape import OnnxFormatError, free_spatial_dims, set_io_dims
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
    assert ort_net.runtime.startswith("onnxruntime ") and "/onnxruntime-" in ort_net.version
    assert cv_net.runtime.startswith("opencv ") and "/opencv-" in cv_net.version
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


def _fixed_size_copy(yunet_onnx, tmp_path):  # noqa: ANN001, ANN202
    """The shared dynamic-input build turned back into what OpenCV Zoo's 2023mar release is: a
    declared 1x3x640x640 input and fixed anchor counts (6400, 1600, 400 per stride)."""
    static = set_io_dims(yunet_onnx.read_bytes(), 640, 640, anchors=lambda i: (6400, 1600, 400)[i % 3])
    path = tmp_path / "yunet_640.onnx"
    path.write_bytes(static)
    return path


def test_a_fixed_size_model_runs_at_any_size(yunet_onnx, dev_faces_dir, tmp_path):
    import onnxruntime as ort

    static = _fixed_size_copy(yunet_onnx, tmp_path)
    session = ort.InferenceSession(str(static), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="invalid dimensions"):  # the 2023mar problem, reproduced
        session.run(None, {"input": np.zeros((1, 3, 608, 800), np.float32)})
    assert free_spatial_dims(static.read_bytes()) == yunet_onnx.read_bytes()  # exactly the dynamic build again
    fixed = YuNetDetector(static, runtime="onnxruntime")
    assert fixed._ort.fixed_input and "onnxruntime" in fixed.version
    img = compose(dev_faces(dev_faces_dir, "happy", 3), size=(1001, 563), face_px=230)[0]
    assert fixed.detect(img, 24) == YuNetDetector(yunet_onnx, runtime="onnxruntime").detect(img, 24)
    assert len(fixed.detect(img, 24)) == 3


def test_opencv_takes_over_when_the_size_cannot_be_freed(yunet_onnx, tmp_path, monkeypatch, caplog):
    static = _fixed_size_copy(yunet_onnx, tmp_path)
    monkeypatch.setattr(yunet_ort, "free_spatial_dims", lambda data: data)  # as if the rewrite did not help
    detector = YuNetDetector(static)
    assert "/opencv-" in detector.version and "using OpenCV's DNN module" in caplog.text
    with pytest.raises(DetectorError, match="declared input size"):
        YuNetDetector(static, runtime="onnxruntime")


def test_not_an_onnx_protobuf_is_refused():
    with pytest.raises(OnnxFormatError):
        free_spatial_dims(b"\xff\xff\xff")


def test_status_check_names_the_runtime_and_how_to_get_the_faster_one(run_cli, yunet_installed, monkeypatch):
    assert "runtime" not in json.loads(run_cli("status", "--format", "json").stdout)["detector"]  # not loaded
    status = json.loads(run_cli("status", "--check", "--format", "json").stdout)["detector"]
    assert status["runtime"].startswith("onnxruntime ") and "hint" not in status
    monkeypatch.setattr(yunet_ort, "runtime_version", lambda: None)  # as if onnxruntime were not installed
    status = json.loads(run_cli("status", "--check", "--format", "json").stdout)["detector"]
    assert status["runtime"].startswith("opencv ") and status["hint"].startswith("pip install onnxruntime")
    assert "yunet on opencv" in run_cli("status", "--check").stdout
