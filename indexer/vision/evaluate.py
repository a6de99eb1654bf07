"""Evaluation of an emotion model on labelled faces: loading an npz in the shared FER
format, and the figures we report (accuracy, confusion, per-class precision/recall).

Pure numpy, so `models/export.py` (which has TensorFlow) and `moodindex model eval`
(which must not) compute every number the same way.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.vision.crop import CLASSES, INPUT_SIZE

SAMPLE_SEED = 0  # `limit` samples: the same faces every run, so figures are comparable


class DatasetError(ValueError):
    """The npz is missing, unreadable, or does not hold faces in the shared format."""


@dataclass(frozen=True)
class LabelledFaces:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64 in 0..6, CLASSES order
    rows: np.ndarray    # (N,) each face's row in the file (a `limit` sample keeps a subset)


def load_npz(path: Path, limit: int | None = None) -> LabelledFaces:
    """Read `images` (uint8 N x 48 x 48) and `labels` (0..6) from an npz, checking both.

    `limit` keeps a fixed, seeded random sample of N faces (in file order): the shared
    files are sorted by class, so their first N faces would be nearly all one class."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path}: not an npz file (expected a numpy .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("images", "labels") if k not in data.files]
            if missing:
                raise DatasetError(f"{path}: missing array(s) {', '.join(missing)} (expected 'images' and 'labels')")
            images, labels = data["images"], data["labels"]
            if "classes" in data.files:
                classes = tuple(str(c) for c in data["classes"])
                if classes != CLASSES:
                    raise DatasetError(f"{path}: class order {classes} differs from the model's {CLASSES}")
    except DatasetError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled arrays), OSError, EOFError ...
        raise DatasetError(f"{path}: not a readable npz file ({type(exc).__name__}: {exc})") from exc
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        raise DatasetError(f"{path}: 'images' must be uint8 N x {INPUT_SIZE} x {INPUT_SIZE}, "
                           f"got {images.dtype} {tuple(images.shape)}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{path}: 'labels' must be 1-D with one label per image, "
                           f"got shape {tuple(labels.shape)} for {len(images)} images")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: 'labels' must be integers 0..{len(CLASSES) - 1}, got {labels.dtype}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DatasetError(f"{path}: labels must be in 0..{len(CLASSES) - 1}, "
                           f"found {int(labels.min())}..{int(labels.max())}")
    rows = np.arange(len(images))
    if limit is not None:
        if limit < 1:
            raise DatasetError(f"limit must be positive, got {limit}")
        if limit < len(images):
            rows = np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(images), size=limit, replace=False))
            images, labels = images[rows], labels[rows]
    if len(images) == 0:
        raise DatasetError(f"{path}: no faces to evaluate")
    return LabelledFaces(np.ascontiguousarray(images), labels.astype(np.int64), rows)


def load_ferplus_majority(path: Path, rows: np.ndarray, n_file: int) -> np.ndarray:
    """Each face's clear FER+ majority class (-1 where there is none) from a votes npz aligned
    row by row with the faces' file (`votes`, `columns`), for the faces at `rows`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            votes, columns = data["votes"], tuple(str(c) for c in data["columns"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a FER+ votes npz with 'votes' and 'columns' ({exc})") from exc
    if votes.ndim != 2 or len(votes) != n_file:
        raise DatasetError(f"{path}: {len(votes)} rows of votes for a file of {n_file} faces: "
                           "the votes must be aligned row by row with the faces")
    return ferplus_clear_majority(votes, columns)[rows]


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
    """Counts (n_classes x n_classes): row = true class, column = predicted class."""
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    return np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def summarise(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...] = CLASSES) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix, as plain
    JSON-ready values.  `probs` is (N, C) scores; the prediction is their argmax."""
    labels = np.asarray(labels, np.int64)
    predicted = np.asarray(probs).argmax(axis=1)
    cm = confusion_matrix(labels, predicted, len(classes))
    true_pos = np.diag(cm).astype(np.float64)
    support, predicted_n = cm.sum(axis=1), cm.sum(axis=0)
    recall = np.divide(true_pos, support, out=np.zeros_like(true_pos), where=support > 0)
    precision = np.divide(true_pos, predicted_n, out=np.zeros_like(true_pos), where=predicted_n > 0)
    pr_sum = precision + recall
    f1 = np.divide(2 * precision * recall, pr_sum, out=np.zeros_like(pr_sum), where=pr_sum > 0)
    n = int(len(labels))
    per_class = {
        name: {"precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4),
               "f1": round(float(f1[i]), 4), "support": int(support[i])}
        for i, name in enumerate(classes)
    }
    present = support > 0
    return {
        "n": n,
        "accuracy": round(float(true_pos.sum() / n), 4) if n else 0.0,
        "balanced_accuracy": round(float(recall[present].mean()), 4) if present.any() else 0.0,
        "macro_f1": round(float(f1[present].mean()), 4) if present.any() else 0.0,
        "classes": list(classes),
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


# FER+ (Barsoum et al., 2016) votes: 10 crowd votes per FER-2013 face over these columns.
FERPLUS_COLUMNS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                    "contempt", "unknown", "NF")
# Our class -> its FER+ column.  Contempt, unknown and not-a-face have no class of ours.
FERPLUS_COLUMN_OF: dict[str, str] = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
                                     "sad": "sadness", "surprise": "surprise", "neutral": "neutral"}


def ferplus_class_votes(votes: np.ndarray, columns: tuple[str, ...] = FERPLUS_COLUMNS) -> np.ndarray:
    """FER+ votes (N, 10) in FER+'s column order -> votes (N, 7) in CLASSES order."""
    index = [list(columns).index(FERPLUS_COLUMN_OF[c]) for c in CLASSES]
    return np.asarray(votes)[:, index]


def ferplus_clear_majority(votes: np.ndarray, columns: tuple[str, ...] = FERPLUS_COLUMNS) -> np.ndarray:
    """Per face, the class that more than half of all its annotators chose, else -1.

    "Clear majority" = strictly more than half of the votes cast (contempt, unknown and
    not-a-face votes count in the total), so ties and split faces are left out: about 80 %
    of PublicTest rows qualify."""
    votes = np.asarray(votes)
    ours = ferplus_class_votes(votes, columns)
    top = ours.argmax(axis=1)
    clear = ours.max(axis=1) * 2 > votes.sum(axis=1)
    return np.where(clear, top, -1)
