"""Which emotion tags a photo gets, and how each photo manager spells them.

A face makes a tag when its top emotion's probability is at least `min_score`; a photo gets
the set of those emotions (one tag per emotion, however many faces show it).  The spellings
follow what each program reads and writes:

* `lr:hierarchicalSubject`  "Emotion|Happy"  (darktable, Lightroom; digiKam third choice)
* `digiKam:TagsList`        "Emotion/Happy"  (digiKam's first choice)
* `MicrosoftPhoto:LastKeywordXMP` "Emotion/Happy" (Windows Photo Gallery; digiKam's second choice)
* `dc:subject` and IPTC Keywords: every level as its own keyword, "Emotion" and "Happy" — what
  darktable's sidecar writer puts there (src/common/tags.c `dt_tag_get_list`: the tag split on
  "|", unless "omit hierarchy" is set) and what MWG keeps in sync with IPTC Keywords.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from indexer.domain import CLASSES, DEFAULT_TAG_MIN_SCORE
from indexer.media.tagstate import DEFAULT_PREFIX  # the one default: media.tagstate reads tags back with it

DEFAULT_MIN_SCORE = DEFAULT_TAG_MIN_SCORE  # the one default threshold, named where tags are made

FORBIDDEN = (",", "|", "/", "\\")

# (group-qualified exiftool tag, what it holds) — the order is the order we write them in.
HIERARCHICAL = "XMP-lr:HierarchicalSubject"
TAGSLIST = "XMP-digiKam:TagsList"
LASTKEYWORD = "XMP-microsoft:LastKeywordXMP"
SUBJECT = "XMP-dc:Subject"
IPTC_KEYWORDS = "IPTC:Keywords"
XMP_FIELDS = (HIERARCHICAL, TAGSLIST, LASTKEYWORD, SUBJECT)
WRITTEN = "XMP-moodindex:Written"


class TagError(ValueError):
    """A prefix or label that cannot be a tag; the message says why."""


class HasScores(Protocol):
    emotion: str
    score: float


def label(emotion: str) -> str:
    """'happy' -> 'Happy'."""
    if emotion not in CLASSES:
        raise TagError(f"unknown emotion {emotion!r}; known: {', '.join(CLASSES)}")
    return emotion.capitalize()


def check_tag_text(text: str, what: str = "tag") -> str:
    """Tag text must survive every reader: no separators (`,` splits in darktable, `|` and `/`
    make levels), no control characters, not empty, at most 64 bytes (the IPTC Keywords limit)."""
    text = text.strip()
    if not text:
        raise TagError(f"{what} must not be empty")
    bad = [c for c in FORBIDDEN if c in text]
    if bad:
        raise TagError(f"{what} {text!r} must not contain {' '.join(repr(c) for c in bad)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise TagError(f"{what} {text!r} must not contain control characters")
    if len(text.encode("utf-8")) > 64:
        raise TagError(f"{what} {text!r} is longer than 64 bytes (the IPTC Keywords limit)")
    return text


def emotions_for_faces(faces: Iterable[HasScores], min_score: float = DEFAULT_MIN_SCORE) -> list[str]:
    """The distinct top emotions of the faces whose top probability reaches `min_score`, in CLASSES order."""
    found = {f.emotion for f in faces if f.emotion in CLASSES and f.score is not None and f.score >= min_score}
    return [c for c in CLASSES if c in found]


def desired_values(emotions: Iterable[str], prefix: str = DEFAULT_PREFIX, iptc: bool = False) -> dict[str, list[str]]:
    """Field -> the values we want present in it for these emotions (empty lists when none)."""
    prefix = check_tag_text(prefix, "prefix")
    labels = [label(e) for e in emotions]
    fields: dict[str, list[str]] = {
        HIERARCHICAL: [f"{prefix}|{lab}" for lab in labels],
        TAGSLIST: [f"{prefix}/{lab}" for lab in labels],
        LASTKEYWORD: [f"{prefix}/{lab}" for lab in labels],
        SUBJECT: ([prefix] + labels) if labels else [],
    }
    if iptc:
        fields[IPTC_KEYWORDS] = list(fields[SUBJECT])
    return fields
