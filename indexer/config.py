"""Settings: defaults < TOML file < environment < CLI flags.

The TOML file (default `<user config dir>/moodindex/config.toml`) may hold:

    db = "~/Pictures/.moodindex.db"    # or "postgresql://user@host:5432/moodindex" ([postgres] extra)
    roots = ["~/Pictures"]
    detector = "auto"        # auto | yunet | haar
    workers = 2
    threads = 1              # LiteRT threads per worker
    min_face = 32            # smallest face side worth analysing, in pixels of the photo as analysed
                             # (decoded at ~1024 px on the long side): 32 there is ~130 px in 12 MP
    max_pixels = 200000000   # decompression-bomb guard: the only pixel limit, checked in every decoder
    max_file_bytes = 1073741824  # a photo file bigger than this (1 GiB) is skipped, never read
    tag_min_score = 0.5      # a face's top emotion makes a tag from this probability on
    cluster = "tcp://scheduler:8786"   # run `index`'s analysis on this Dask cluster ([cluster] extra)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from indexer.db.location import DbLocation, LocationError, parse_location
from indexer.domain import DEFAULT_MIN_FACE, DEFAULT_TAG_MIN_SCORE, DETECTOR_CHOICES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

APP = "moodindex"
# No photo comes near 1 GiB (a 100 MP 16-bit TIFF is ~600 MB): a bigger "photo" is junk or a
# device, and reading it would cost a worker that much memory.
DEFAULT_MAX_FILE_BYTES = 1 << 30
# OpenCV refuses to decode more pixels than this (CV_IO_MAX_IMAGE_PIXELS, fixed when it loads): a
# larger max_pixels would promise what the decoder cannot do, so it is refused as a setting.
MAX_PIXELS_CEILING = 1 << 30


class ConfigError(ValueError):
    """The config file is unreadable or has a bad value."""


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP))


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP))


def default_db() -> Path:
    return data_dir() / "index.db"


def default_config_file() -> Path:
    return config_dir() / "config.toml"


@dataclass(frozen=True)
class Settings:
    db: DbLocation = field(default_factory=default_db)  # a SQLite file, or a postgresql:// URL
    roots: tuple[Path, ...] = ()
    detector: str = "auto"
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    threads: int = 1
    min_face: int = DEFAULT_MIN_FACE
    max_pixels: int = 200_000_000
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    model: Path | None = None
    tag_min_score: float = DEFAULT_TAG_MIN_SCORE
    cluster: str | None = None  # a Dask scheduler (tcp://HOST:PORT) that `index` runs the analysis on

    def with_overrides(self, **changes: Any) -> Settings:
        """Apply CLI flags; None means "not given"."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def parse_db(value: str | Path) -> DbLocation:
    """A `db` value from the file, the environment or `--db`: a path or a server URL."""
    try:
        return parse_location(value)
    except LocationError as exc:
        raise ConfigError(str(exc)) from exc


def _coerce(name: str, value: Any) -> Any:
    if name == "db":
        return parse_db(str(value))
    if name == "model":
        return Path(os.path.expanduser(str(value)))
    if name == "roots":
        if isinstance(value, str):
            value = [value]
        return tuple(Path(os.path.expanduser(str(v))) for v in value)
    if name in ("workers", "threads", "min_face", "max_pixels", "max_file_bytes"):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if name == "max_pixels" and value > MAX_PIXELS_CEILING:
            raise ConfigError(f"max_pixels can be at most {MAX_PIXELS_CEILING} (OpenCV's decoder limit), "
                              f"got {value}")
        return value
    if name == "tag_min_score":
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"tag_min_score must be a number from 0 to 1, got {value!r}")
        return float(value)
    if name == "cluster":
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"cluster must be a Dask scheduler address like tcp://HOST:8786, got {value!r}")
        return value.strip()
    if name == "detector":
        if value not in DETECTOR_CHOICES:
            raise ConfigError(f"detector must be one of {', '.join(DETECTOR_CHOICES)}, got {value!r}")
    return value


def config_file_path(config_file: Path | None = None, env: dict[str, str] | None = None) -> Path:
    """The config file in use: --config, else MOODINDEX_CONFIG, else the user config dir's."""
    env = os.environ if env is None else env
    return Path(config_file or env.get("MOODINDEX_CONFIG") or default_config_file()).expanduser()


def read_config(path: Path) -> dict[str, Any]:
    """The TOML file's raw table (`load_settings` checks and converts it)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def load_settings(config_file: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file (if any), then MOODINDEX_* environment variables."""
    env = os.environ if env is None else env
    explicit = config_file is not None or "MOODINDEX_CONFIG" in env
    path = config_file_path(config_file, env)
    values: dict[str, Any] = {}
    if path.exists() or explicit:
        raw = read_config(path)
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"config file {path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = {k: _coerce(k, v) for k, v in raw.items()}
    for name in ("db", "detector", "model", "cluster"):
        if env.get(f"MOODINDEX_{name.upper()}"):
            values[name] = _coerce(name, env[f"MOODINDEX_{name.upper()}"])
    return Settings(**values)
