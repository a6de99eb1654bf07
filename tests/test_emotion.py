"""The emotion model at run time: the bundled int8 model, LiteRT, preprocessing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.vision import emotion
from indexer.vision.crop import CLASSES, crop_faces, normalise
from indexer.vision.emotion import EmotionModel, ModelError, default_model_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model() -> EmotionModel:
    return EmotionModel(threads=1, tta=False)


@pytest.fixture(scope="module")
def val_faces(fer_val: Path) -> tuple[np.ndarray, np.ndarray]:
    """48 validation faces, spread over all classes (the file is sorted by class)."""
    data = np.load(fer_val)
    pick = np.random.default_rng(3).choice(len(data["labels"]), 48, replace=False)
    return data["images"][pick], data["labels"][pick]


def test_bundled_model_loads(model: EmotionModel) -> None:
    assert default_model_path().is_file()
    assert model.path == default_model_path()
    assert model.classes == CLASSES
    assert model.input_shape == (-1, 48, 48, 1)
    assert model.quantization == "int8 (full integer)"
    assert model.name == "moodindex-fer"
    assert model.version != "unknown"
    assert model.size_bytes <= 3 * 2**20  # issue 2: file <= 3 MB
    info = model.info()
    assert info["classes"] == list(CLASSES)
    assert info["model_id"].startswith(f"{model.name}-{model.version}+")
    assert info["runtime"] == "ai_edge_litert"


def test_outputs_are_probabilities(model: EmotionModel, val_faces) -> None:
    faces, _ = val_faces
    probs = model.predict(faces)
    assert probs.shape == (len(faces), 7)
    assert probs.dtype == np.float32
    assert np.all(probs >= 0) and np.all(probs <= 1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # a trained model is not uniform: it commits to a class on most faces
    assert float(np.median(probs.max(axis=1))) > 0.3


def test_empty_and_single_face(model: EmotionModel, val_faces) -> None:
    faces, _ = val_faces
    assert model.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    single = model.predict(faces[0])  # a 2-D crop is one face
    assert single.shape == (1, 7)


def test_batching_does_not_change_results(model: EmotionModel, val_faces, monkeypatch) -> None:
    faces, _ = val_faces
    batched = model.predict(faces)
    one_by_one = np.concatenate([model.predict(f[None]) for f in faces])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)
    monkeypatch.setattr(emotion, "MAX_BATCH", 5)  # chunks of 5, last one short
    np.testing.assert_allclose(model.predict(faces), batched, atol=1e-6)


def test_prediction_is_deterministic(model: EmotionModel, val_faces) -> None:
    faces, _ = val_faces
    assert np.array_equal(model.predict(faces), model.predict(faces.copy()))


def test_preprocessing_is_deterministic_and_matches_int8_input(model: EmotionModel) -> None:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes = [(40.0, 30.0, 100.0, 110.0), (250.0, 180.0, 90.0, 90.0)]  # the second runs off the image
    a, b = crop_faces(image, boxes), crop_faces(image.copy(), list(boxes))
    assert a.shape == (2, 48, 48) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    x = normalise(a)
    assert x.shape == (2, 48, 48, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x[..., 0], a.astype(np.float32) / 255.0)
    # with the exported scale of 1/255 and zero point -128, the int8 input is pixel - 128
    scale, zero = model._in["quantization"]
    assert zero == -128 and scale == pytest.approx(1 / 255, rel=1e-4)
    q = model._to_input(a)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q[..., 0].astype(np.int16), a.astype(np.int16) - 128)


def test_flip_tta_averages_the_mirror(val_faces) -> None:
    faces, _ = val_faces
    m = EmotionModel(tta=True)
    plain = m.predict(faces, tta=False)
    mirrored = m.predict(np.ascontiguousarray(faces[:, :, ::-1]), tta=False)
    np.testing.assert_allclose(m.predict(faces), (plain + mirrored) / 2, atol=1e-6)


def test_accuracy_on_validation_faces(model: EmotionModel, val_faces) -> None:
    faces, labels = val_faces
    accuracy = float((model.predict(faces).argmax(axis=1) == labels).mean())
    assert accuracy >= 0.5  # 48 faces: loose bound; test_model_cli checks 500 faces at >= 0.60


def test_bad_input_raises_value_error(model: EmotionModel) -> None:
    with pytest.raises(ValueError, match="uint8"):
        model.predict(np.zeros((2, 48, 48), np.float32))
    with pytest.raises(ValueError, match="48"):
        model.predict(np.zeros((2, 64, 64), np.uint8))


def test_missing_and_corrupt_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        EmotionModel(tmp_path / "nope.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError, match="not a usable TFLite model"):
        EmotionModel(bad)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(default_model_path().read_bytes()[:5000])
    with pytest.raises(ModelError):
        EmotionModel(truncated)
    with pytest.raises(ModelError, match="threads"):
        EmotionModel(threads=0)


def test_metadata_is_checked(tmp_path: Path) -> None:
    copy = tmp_path / "m.tflite"
    shutil.copyfile(default_model_path(), copy)
    # without metadata the model still loads, named after its file
    m = EmotionModel(copy)
    assert m.name == "m" and m.version == "unknown" and m.quantization == "int8 (full integer)"
    meta = json.loads(default_model_path().with_suffix(".json").read_text())
    copy.with_suffix(".json").write_text(json.dumps({**meta, "classes": list(reversed(CLASSES))}))
    with pytest.raises(ModelError, match="class order"):
        EmotionModel(copy)
    copy.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError, match="metadata"):
        EmotionModel(copy)


def test_no_runtime_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter",
                 "tensorflow"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    with pytest.raises(ModelError, match="ai-edge-litert"):
        EmotionModel()


def test_runtime_does_not_import_tensorflow() -> None:
    code = ("import sys, numpy as np\n"
            "from indexer.vision.emotion import EmotionModel\n"
            "p = EmotionModel().predict(np.full((3, 48, 48), 128, np.uint8))\n"
            "assert p.shape == (3, 7)\n"
            "assert 'tensorflow' not in sys.modules, 'runtime imported tensorflow'\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert "XNNPACK" not in out.stderr  # the runtime's C++ chatter is kept off stderr
