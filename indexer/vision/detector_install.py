"""Install the YuNet face detector's weights: downloaded (pinned sha256) or from a local file.

The only network use in moodindex, and only when the user asks for it.  A file is
installed only after its checksum matches (download) and it loads in OpenCV (both), via a
temp file + rename, so a failed or interrupted install never leaves a broken detector.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from indexer.vision.faces import DetectorError, YuNetDetector, yunet_path

# OpenCV Zoo, models/face_detection_yunet: the 2023mar release (per its Git LFS pointer).
YUNET_URL = ("https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
             "face_detection_yunet_2023mar.onnx")
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
YUNET_SIZE = 232_589
MAX_DOWNLOAD = 50 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _install_checked(tmp: Path, dest: Path) -> Path:
    try:
        YuNetDetector(tmp)
    except DetectorError as exc:
        raise DetectorError(f"not a usable YuNet model: {exc}") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dest)
    return dest


def add_yunet(source: Path, dest: Path | None = None) -> Path:
    """Install a local copy of YuNet weights after checking that OpenCV loads them."""
    dest = dest or yunet_path()
    if not source.is_file():
        raise DetectorError(f"{source}: no such file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".yunet-", suffix=".onnx", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(source, tmp)
        return _install_checked(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def offline_hint(url: str = YUNET_URL) -> str:
    """What to do when this machine cannot download: the same file, brought by hand, through `model add`."""
    name = url.rstrip("/").rsplit("/", 1)[-1] or "the .onnx file"
    return (f"Without a network here: download {name} on another machine ({url}), copy it over, then run "
            f"`moodindex model add yunet PATH/TO/{name}` (it is checked to load before it is installed).")


def fetch_yunet(url: str = YUNET_URL, sha256: str = YUNET_SHA256, dest: Path | None = None,
                timeout: float = 60.0) -> Path:
    """Download YuNet weights, verify the pinned checksum, install them."""
    dest = dest or yunet_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".yunet-", suffix=".onnx", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (https or the user's URL)
                    total = 0
                    for chunk in iter(lambda: resp.read(1 << 16), b""):
                        total += len(chunk)
                        if total > MAX_DOWNLOAD:
                            raise DetectorError(f"download from {url} is larger than {MAX_DOWNLOAD >> 20} MB")
                        out.write(chunk)
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DetectorError(f"download from {url} failed: {reason}\n{offline_hint(url)}") from exc
        got = sha256_file(tmp)
        if got != sha256.lower():
            raise DetectorError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}; nothing installed")
        return _install_checked(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
