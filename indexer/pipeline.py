"""One photo -> PhotoResult: EXIF, decode, faces, emotions.  No database, no file walking.

`Analyzer.analyze` never raises for a bad file: the result carries status 'error' or
'skipped' and the reason, so one broken photo never stops a run.  It is what `index`,
`watch` and `classify` all run, in-process or in worker processes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from indexer.config import DEFAULT_MAX_FILE_BYTES, Settings
from indexer.domain import DEFAULT_MIN_FACE, STATUS_ERROR, STATUS_OK, STATUS_SKIPPED
from indexer.media.capture import capture_messages, library_stderr
from indexer.media.dates import date_taken
from indexer.media.decode import DecodeError, MissingExtra, decode
from indexer.media.exif import read_exif
from indexer.media.fingerprint import KnownPhoto, fingerprint
from indexer.media.regions import named_regions
from indexer.media.source import UnreadablePhoto, read_photo
from indexer.media.tagstate import tag_verdicts
from indexer.results import FaceResult, PhotoResult
from indexer.vision.crop import FACE_MARGIN, FACE_MARGINS, crop_faces
from indexer.vision.faces import Detection

log = logging.getLogger(__name__)

MIN_FACE_ANALYSIS_PX = DEFAULT_MIN_FACE  # the `min_face` setting's default (indexer.domain says why)
# Detectors run on a smaller copy: a face worth classifying (>= 150 px in a 12 MP photo) is
# still >= 30 px there, and detection cost falls with the square of the size.  Measured with
# YuNet (cut-off 0.6) on the index benchmark's 60 photos of real scenes: 800 px finds 94.4 % of
# the faces, 720 px 92.8 %, 640 px 88.0 %, 512 px 82.4 %, none of them false
# (`python benchmarks/index_bench.py --photos 60 --sweep`).  On ONNX Runtime 800 px costs
# ~7 ms per photo on one core, 1.7 ms more than 720 px: worth 1.6 points of recall.
DETECT_LONG_SIDE = 800


class Analyzer:
    """Holds the loaded detector and emotion model (one per process).

    Build it with `Analyzer.from_settings`: the one place where the settings that shape an
    analysis (detector, model, threads, max_pixels, min_face, max_file_bytes) reach it."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Analyzer:
        return cls(settings.detector, settings.model, settings.threads, settings.max_pixels, settings.min_face,
                   max_file_bytes=settings.max_file_bytes)

    def __init__(self, detector_name: str = "auto", model_path: Path | None = None, threads: int = 1,
                 max_pixels: int = 200_000_000, min_face: int = MIN_FACE_ANALYSIS_PX,
                 max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        from indexer.vision.emotion import EmotionModel
        from indexer.vision.faces import make_detector  # noqa: I001 (loads OpenCV data lazily)

        self.detector = make_detector(detector_name, threads)
        self.model = EmotionModel(model_path, threads=threads)
        self.max_pixels = max_pixels
        self.min_face = min_face
        self.max_file_bytes = max_file_bytes

    def analyze(self, path: str | Path, st: os.stat_result | None = None,
                known: KnownPhoto | None = None) -> PhotoResult:
        """Analyse one file.  With `known` (the index's row for a file whose size or mtime
        changed), a file whose pixels and orientation are the same is not decoded again.
        What libraries print meanwhile comes back in the result's `warnings`."""
        with capture_messages() as messages:
            result = self._analyze(str(path), st, known)
        return replace(result, warnings=result.warnings + tuple(messages)) if messages else result

    def _analyze(self, path: str, st: os.stat_result | None, known: KnownPhoto | None) -> PhotoResult:
        try:
            st = st or os.stat(path)
        except OSError as exc:
            return PhotoResult(path, 0, 0, STATUS_ERROR, f"cannot read file: {exc.strerror or exc}")
        base = {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        try:
            data = read_photo(path, self.max_file_bytes)
        except UnreadablePhoto as exc:
            return PhotoResult(**base, status=STATUS_SKIPPED if exc.skipped else STATUS_ERROR, error=str(exc))
        base["content_hash"] = fingerprint(data)
        base["detector"] = self.detector.version
        base["model_version"] = self.model.model_id
        exif = read_exif(data)
        date = date_taken(path, data, exif, st.st_mtime_ns)
        base.update(taken_at=date.taken_at, date_source=date.source, utc_offset_min=date.utc_offset_min,
                    camera=exif.camera, orientation=exif.orientation, warnings=date.notes)
        if known and (known.content_hash, known.orientation) == (base["content_hash"], exif.orientation):
            shape = (known.width, known.height) if known.width and known.height else None
            self._read_metadata(base, path, data, exif.orientation, shape)
            return PhotoResult(**base, status=STATUS_OK, pixels_unchanged=True)
        try:
            with library_stderr():
                decoded = decode(data, Path(path).suffix, exif.orientation, self.max_pixels)
        except MissingExtra as exc:
            return PhotoResult(**base, status=STATUS_SKIPPED, error=str(exc))
        except DecodeError as exc:
            return PhotoResult(**base, status=STATUS_ERROR, error=str(exc))
        except Exception as exc:  # a decoder bug must not stop the run either
            log.debug("decoder failure on %s", path, exc_info=True)
            return PhotoResult(**base, status=STATUS_ERROR, error=f"cannot decode: {type(exc).__name__}: {exc}")
        base.update(width=decoded.width, height=decoded.height)
        self._read_metadata(base, path, data, exif.orientation, (decoded.width, decoded.height))
        del data
        try:
            with library_stderr():
                faces = self.faces_in(decoded.image, decoded.scale)
        except Exception as exc:  # a detector or model runtime failing on one picture: blame the picture
            log.debug("face analysis failure on %s", path, exc_info=True)
            return PhotoResult(**base, status=STATUS_ERROR, error=f"face analysis failed: {type(exc).__name__}: {exc}")
        return PhotoResult(**base, status=STATUS_OK, faces=faces)

    @staticmethod
    def _read_metadata(base: dict, path: str, data: bytes, orientation: int | None,
                       shape: tuple[int, int] | None) -> None:
        """Names and the user's tag edits: read on every path, the metadata-only edit included."""
        regions, notes = named_regions(path, data, orientation, shape)
        tags, tag_notes = tag_verdicts(path, data)
        base.update(regions=regions, tags=tags, warnings=base.get("warnings", ()) + notes + tag_notes)

    def faces_in(self, image: np.ndarray, scale: float = 1.0) -> tuple[FaceResult, ...]:
        """Detect, crop the way the model was trained, classify in one batch."""
        f = min(1.0, DETECT_LONG_SIDE / max(image.shape[:2]))
        # the decoded image is at most ~1.5x the detection size, where bilinear shrinking is
        # as good for the detector as area averaging and 6x cheaper (0.5 vs 2.9 ms)
        method = cv2.INTER_LINEAR if f > 0.6 else cv2.INTER_AREA
        small = cv2.resize(image, None, fx=f, fy=f, interpolation=method) if f < 1 else image
        detections = [Detection(tuple(v / f for v in d.box), d.confidence)
                      for d in self.detector.detect(small, max(12, round(self.min_face * f)))]
        if not detections:
            return ()
        margin = FACE_MARGINS.get(self.detector.name, FACE_MARGIN)
        crops = crop_faces(image, [d.box for d in detections], margin=margin)
        probs = self.model.predict(crops)
        out = []
        for det, p in zip(detections, probs, strict=True):
            x, y, w, h = (round(v * scale) for v in det.box)
            out.append(FaceResult((x, y, w, h), det.confidence, tuple(float(v) for v in p)))
        out.sort(key=lambda f: (f.box[0], f.box[1]))
        return tuple(out)
