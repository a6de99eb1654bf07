"""models/training/label_agreement.py: which PublicTest faces count as FER+ agreeing with FER-2013's
label (the model card's split of FER-2013 accuracy rests on it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from indexer.vision.crop import CLASSES
from indexer.vision.evaluate import FERPLUS_COLUMN_OF, FERPLUS_COLUMNS


def _load():
    path = Path(__file__).parents[1] / "models" / "training" / "label_agreement.py"
    spec = importlib.util.spec_from_file_location("label_agreement", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _votes(**by_class: int) -> list[int]:
    """One face's 10 FER+ columns from votes named by our classes (or 'contempt', 'unknown')."""
    row = [0] * len(FERPLUS_COLUMNS)
    for name, n in by_class.items():
        row[FERPLUS_COLUMNS.index(FERPLUS_COLUMN_OF.get(name, name))] = n
    return row


def test_agreement_parts_split_faces_by_whether_the_label_is_among_the_most_voted() -> None:
    label_agreement = _load()
    c = CLASSES.index
    faces = [
        (c("sad"), _votes(sad=6, neutral=4), True, "agree"),  # the label wins
        (c("sad"), _votes(sad=5, neutral=5), True, "agree"),  # a tie counts as agreeing
        (c("sad"), _votes(neutral=8, sad=2), True, "disagree"),  # overruled
        (c("fear"), _votes(contempt=7, fear=3), True, "agree"),  # contempt is no class of ours
        (c("angry"), _votes(unknown=10), True, "disagree"),  # no vote for the label at all
        (c("happy"), _votes(), False, "unmatched"),  # FER+ could not match the face
    ]
    labels = np.array([f[0] for f in faces])
    votes = np.array([f[1] for f in faces])
    matched = np.array([f[2] for f in faces])
    parts = label_agreement.agreement_parts(labels, votes, matched)
    found = [next(name for name, mask in parts.items() if mask[i]) for i in range(len(faces))]
    assert found == [f[3] for f in faces]
    assert sum(mask.astype(int) for mask in parts.values()).tolist() == [1] * len(faces)  # one part each
