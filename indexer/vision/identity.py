"""Which detector and emotion model the next analysis would use, known without loading them, and
whether a row analysed earlier is older (so `index` re-analyses it: a better detector or a new
model upgrades the index instead of leaving "295 unchanged").

Rows record `detector` ("yunet-<sha12>/<runtime>", "haar-frontalface-default/opencv-4.x") and
`model_version` ("<name>-<version>+<sha8>").  The runtime after the "/" is not part of what was
found, so it never makes a row stale; going from YuNet back to Haar, or to an older model
version, is not an upgrade."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from indexer.config import Settings, data_dir

YUNET_FILE = "face_detection_yunet.onnx"
DEFAULT_MODEL_FILE = "moodindex-fer-v2.tflite"


def yunet_path() -> Path:
    """Where `moodindex model fetch/add yunet` installs YuNet's weights."""
    return data_dir() / "models" / YUNET_FILE


def available_detectors() -> list[str]:
    """The detectors that can run, best first (Haar ships inside OpenCV's wheel)."""
    return (["yunet"] if yunet_path().exists() else []) + ["haar"]


def default_model_path() -> Path:
    """The model shipped with the package (`models/` in the repository, installed as
    `indexer.bundled_models`)."""
    try:
        bundled = Path(str(resources.files("indexer.bundled_models") / DEFAULT_MODEL_FILE))
        if bundled.is_file():
            return bundled
    except (ModuleNotFoundError, TypeError):
        # Editable installs cannot map a sub-package onto a folder without __init__.py.
        pass
    return Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL_FILE


def model_summary(settings: Settings) -> dict[str, Any]:
    """What `status` says about the emotion model, from its file and metadata, without loading a
    runtime (`status --check` loads it)."""
    path = Path(settings.model) if settings.model else default_model_path()
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8")) \
            if path.with_suffix(".json").exists() else {}
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
    except (OSError, ValueError) as exc:
        return {"error": f"{path}: {getattr(exc, 'strerror', None) or exc}", "path": str(path)}
    if not isinstance(meta, dict):
        return {"error": f"{path.with_suffix('.json')}: model metadata must be a JSON object", "path": str(path)}
    name, version = str(meta.get("name", path.stem)), str(meta.get("version", "unknown"))
    return {"name": name, "version": version, "id": model_id(name, version, sha), "path": str(path),
            "quantization": meta.get("quantization")}


def model_id(name: str, version: str, sha256: str) -> str:
    """What a row records for an emotion model: a re-exported model (same version, new weights) differs."""
    return f"{name}-{version}+{sha256[:8]}"


def detector_key(version: str | None) -> str:
    """A detector's version without its runtime: 'yunet-<sha12>' or 'haar-frontalface-default'."""
    return (version or "").split("/", 1)[0]


@dataclass(frozen=True)
class Installed:
    detector: str  # detector_key of what would run now
    model: str     # model_id of what would run now


def installed(settings: Settings) -> Installed | None:
    """The detector and model `settings` select, read from their files; None when either is missing
    (the analysis itself then fails with the clear message)."""
    name = settings.detector if settings.detector != "auto" else available_detectors()[0]
    model_path = Path(settings.model) if settings.model else default_model_path()
    try:
        if name == "yunet":
            detector = "yunet-" + hashlib.sha256(yunet_path().read_bytes()).hexdigest()[:12]
        else:
            detector = "haar-frontalface-default"
        meta_path = model_path.with_suffix(".json")
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        sha = hashlib.sha256(model_path.read_bytes()).hexdigest()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    return Installed(detector, model_id(str(meta.get("name", model_path.stem)), str(meta.get("version", "unknown")),
                                        sha))


def _version_key(model: str) -> tuple[int, ...] | None:
    m = re.search(r"-(\d+(?:\.\d+)*)\+[0-9a-f]+$", model)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def is_older(detector: str | None, model: str | None, now: Installed) -> bool:
    """Was a row with this `detector` and `model_version` analysed by something older than `now`?"""
    row_detector = detector_key(detector)
    if row_detector != now.detector and not (row_detector.startswith("yunet") and now.detector.startswith("haar")):
        return True
    if model == now.model:
        return False
    if model is None:
        return True
    row_version, now_version = _version_key(model), _version_key(now.model)
    return not (row_version and now_version and row_version > now_version)
