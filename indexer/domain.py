"""The domain's shared words: emotion classes, photo statuses, detector names, default thresholds.

Imports nothing but the standard library, so that `moodindex query`, the database layer and the
export code can use these words without loading OpenCV or a model runtime (the vision modules
import them from here, not the other way round)."""

from __future__ import annotations

# The model's output order: FER-2013's seven classes.  Training, the model file's metadata,
# the database columns and the query words all follow this order.
CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# photo.status values
STATUS_OK = "ok"            # decoded and analysed (possibly zero faces)
STATUS_ERROR = "error"      # could not be analysed; `error` says why
STATUS_SKIPPED = "skipped"  # a known format whose optional extra is missing; `error` names it
STATUS_DELETED = "deleted"  # gone from a reachable root (kept briefly so moves can find it)
STATUS_RETRY = "retry"      # a worker process died on it (OOM killer, a crash): the next run tries it
                            # once more on a fresh worker; a second death makes it an error for good

# photo.date_source values (media/dates.py says where each comes from).  Only the file's time is an
# estimate: a date from EXIF, an XMP sidecar or the file's own XMP is the photo's date.
DATE_EXIF = "exif"
DATE_SIDECAR = "sidecar"
DATE_XMP = "xmp"
DATE_FILE = "file"
TRUSTED_DATE_SOURCES: tuple[str, ...] = (DATE_EXIF, DATE_SIDECAR, DATE_XMP)
DATE_SOURCE_TEXT = {DATE_EXIF: "EXIF", DATE_SIDECAR: "XMP sidecar", DATE_XMP: "XMP in the file",
                    DATE_FILE: "estimated from the file's time"}


def date_is_estimated(date_source: str | None) -> bool:
    """The one rule for "estimated": the date is the file's modification time."""
    return date_source == DATE_FILE

# Face detectors a user can ask for; "auto" is the best one installed.
DETECTOR_CHOICES: tuple[str, ...] = ("auto", "yunet", "haar")

# A face makes a tag when its top emotion's probability reaches this: F0.5-best on
# facial_expressions_dev (benchmarks/tag_threshold.py; README "Which faces make a tag").
DEFAULT_TAG_MIN_SCORE = 0.5

# Smallest face worth classifying, in analysis pixels (the photo decoded at ~1024 px on the long
# side, see media/decode.py): the model sees 48 px faces, and a face much smaller than that has
# too few pixels for a trustworthy expression.
DEFAULT_MIN_FACE = 32


def clean_name(name: str) -> str:
    """A person's name as stored: inner whitespace collapsed, ends trimmed."""
    return " ".join(name.split())


def person_key(name: str) -> str:
    """What makes two spellings one person ("anna  LIND" is "Anna Lind"): case and spacing do not
    count.  The people table's unique key, and what `person:` and names in queries compare."""
    return clean_name(name).casefold()
