"""The training side's data rules: FER+ votes -> our classes, clear majorities, soft
targets, and the camera augmentation.  Pure numpy/OpenCV: no TensorFlow needed."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.vision.crop import CLASSES
from indexer.vision.evaluate import FERPLUS_COLUMNS, ferplus_class_votes, ferplus_clear_majority

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "training"))

from camera_aug import NONE, CameraAug  # noqa: E402
from train import ferplus_targets, not_a_face, teacher_probabilities, training_set  # noqa: E402


def votes_row(**counts: int) -> np.ndarray:
    row = np.zeros(len(FERPLUS_COLUMNS), np.int16)
    for name, n in counts.items():
        row[FERPLUS_COLUMNS.index(name)] = n
    return row


def test_ferplus_votes_land_on_our_class_order() -> None:
    ours = ferplus_class_votes(votes_row(anger=3, happiness=5, neutral=2)[None])[0]
    assert ours[CLASSES.index("angry")] == 3
    assert ours[CLASSES.index("happy")] == 5
    assert ours[CLASSES.index("neutral")] == 2
    assert ours.sum() == 10


@pytest.mark.parametrize(("counts", "expected"), [
    ({"happiness": 6, "neutral": 4}, "happy"),
    ({"happiness": 5, "neutral": 5}, None),             # a tie is not a clear majority
    ({"sadness": 5, "contempt": 3, "neutral": 2}, None),  # half is not more than half
    ({"fear": 6, "NF": 4}, "fear"),
    ({"contempt": 8, "neutral": 2}, None),            # contempt is no class of ours
])
def test_clear_majority_needs_more_than_half_of_all_votes(counts: dict, expected: str | None) -> None:
    got = int(ferplus_clear_majority(votes_row(**counts)[None])[0])
    assert got == (CLASSES.index(expected) if expected else -1)


def write_votes(path: Path, rows: list[np.ndarray], matched: list[bool]) -> Path:
    np.savez(path, votes=np.stack(rows), matched=np.array(matched), columns=np.array(FERPLUS_COLUMNS))
    return path


def test_soft_targets_mix_votes_with_the_fer2013_label(tmp_path: Path) -> None:
    votes = write_votes(tmp_path / "fp.npz", [votes_row(neutral=8, sadness=2), votes_row(), votes_row(NF=10)],
                        [True, False, True])
    labels = np.array([CLASSES.index("sad"), CLASSES.index("angry"), CLASSES.index("fear")])
    t = ferplus_targets(labels, votes, weight=0.7)
    assert np.allclose(t.sum(axis=1), 1.0)
    assert t[0, CLASSES.index("neutral")] == pytest.approx(0.7 * 0.8)
    assert t[0, CLASSES.index("sad")] == pytest.approx(0.7 * 0.2 + 0.3)
    assert t[1, CLASSES.index("angry")] == 1.0       # unmatched: the FER-2013 label alone
    assert t[2, CLASSES.index("fear")] == 1.0        # no votes for our classes: the label alone
    assert ferplus_targets(labels, votes, weight=0.0)[0, CLASSES.index("sad")] == 1.0
    assert not_a_face(votes).tolist() == [False, False, True]


def test_camera_augmentation_is_seeded_and_keeps_shape() -> None:
    faces = np.random.default_rng(0).integers(0, 256, (32, 48, 48), dtype=np.uint8)
    a = CameraAug().apply(faces, np.random.default_rng(5))
    b = CameraAug().apply(faces, np.random.default_rng(5))
    assert a.shape == faces.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, faces)
    assert np.array_equal(NONE.apply(faces, np.random.default_rng(5)), faces)


def test_camera_blur_and_downscale_remove_fine_detail() -> None:
    checker = (np.indices((48, 48)).sum(axis=0) % 2 * 255).astype(np.uint8)[None]
    soft = CameraAug(p_scale=1, p_blur=1, p_gamma=0, p_noise=0, p_jpeg=0).apply(checker, np.random.default_rng(1))
    assert soft.std() < checker.std() / 2


def training_args(tmp_path: Path, real_loss: str) -> argparse.Namespace:
    rng = np.random.default_rng(0)
    fer = tmp_path / "fer.npz"
    np.savez(fer, images=rng.integers(0, 256, (3, 48, 48), dtype=np.uint8),
             labels=np.array([CLASSES.index("sad"), CLASSES.index("surprise"), CLASSES.index("angry")]),
             classes=np.array(CLASSES))
    real = tmp_path / "real.npz"
    np.savez(real, images=rng.integers(0, 256, (2, 48, 48), dtype=np.uint8),
             labels=np.array([CLASSES.index("happy"), CLASSES.index("neutral")]))
    return argparse.Namespace(train=fer, ferplus=None, ferplus_weight=0.0, real=str(real), real_loss=real_loss,
                              extra=[], teacher=None, teacher_weight=0.7, run=tmp_path / "run")


def test_real_faces_are_scored_over_their_sets_classes_only(tmp_path: Path) -> None:
    """The real set shows happy and neutral only: with the partial loss its faces must not teach
    'a camera photo is never sad or surprised' (the shortcut that sent real surprise to neutral)."""
    x, t = training_set(training_args(tmp_path, "partial"))
    k = len(CLASSES)
    assert x.shape == (5, 48, 48) and t.shape == (5, 2 * k)
    assert (t[:3, k:] == 1).all()                      # FER-2013 faces: every class counts
    allowed = {CLASSES[i] for i in np.flatnonzero(t[3, k:])}
    assert allowed == {"happy", "neutral"}
    assert (t[3, k:] == t[4, k:]).all()
    assert t[3, CLASSES.index("happy")] == 1.0 and t[4, CLASSES.index("neutral")] == 1.0
    _, t_full = training_set(training_args(tmp_path, "full"))
    assert (t_full[:, k:] == 1).all()


def test_teacher_probabilities_mix_into_fer_targets_only(tmp_path: Path) -> None:
    """Distillation: the FER-2013 faces' targets become w x the teacher's softmax + (1 - w) x the
    label mix; the real faces keep their (right) partial labels.  The run's cached teacher
    probabilities are what a resumed run reads, so no TensorFlow is needed here."""
    args = training_args(tmp_path, "partial")
    args.run.mkdir()
    args.teacher, args.teacher_weight = tmp_path / "teacher.keras", 0.5
    args.teacher.write_bytes(b"the teacher's weights")
    teacher = np.full((3, len(CLASSES)), 1.0 / len(CLASSES), np.float32)
    np.savez(args.run / "teacher_probs.npz", probs=teacher,
             teacher_sha256=np.array(hashlib.sha256(args.teacher.read_bytes()).hexdigest()))
    _, plain = training_set(training_args(tmp_path, "partial"))
    _, t = training_set(args)
    k = len(CLASSES)
    np.testing.assert_allclose(t[:3, :k], 0.5 * teacher + 0.5 * plain[:3, :k], rtol=1e-6)
    np.testing.assert_allclose(t[:3, :k].sum(axis=1), 1.0, rtol=1e-6)
    assert (t[3:] == plain[3:]).all()                  # real faces: unchanged


def test_a_cache_from_another_teacher_is_not_read(tmp_path: Path) -> None:
    """Retrained or replaced teacher at the same path: its cached probabilities are stale, so the
    teacher itself is asked again (here a stand-in that records the call)."""
    cache = tmp_path / "teacher_probs.npz"
    checkpoint = tmp_path / "teacher.keras"
    checkpoint.write_bytes(b"new weights")
    np.savez(cache, probs=np.zeros((3, len(CLASSES)), np.float32), teacher_sha256=np.array("old digest"))

    class Asked(Exception):
        pass

    class FakeTF:
        class keras:
            class models:
                @staticmethod
                def load_model(path, compile):  # noqa: ANN001, ANN205
                    raise Asked(path)

    with pytest.raises(Asked):
        teacher_probabilities(checkpoint, np.zeros((3, 48, 48), np.uint8), cache, FakeTF)
