"""What every command shares: settings (resolved once) and the index, opened on first use."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.config import ConfigError, Settings, load_settings, parse_db
from indexer.paths import escape_path, path_bytes

if TYPE_CHECKING:  # SQLAlchemy is imported when the index is opened: `--help` and workers start faster
    from sqlalchemy import Engine


class MoodindexError(Exception):
    """An expected failure with a message for the user; exit code 2 for usage, 1 otherwise."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    @classmethod
    def from_load_failure(cls, exc: Exception) -> MoodindexError:
        """A model or detector that cannot load: its own message is already the clear line."""
        return cls(str(exc))


@dataclass
class AppContext:
    config_file: Path | None
    db_flag: str | None
    verbosity: int = 0
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                db = parse_db(self.db_flag) if self.db_flag else None
                self._settings = load_settings(self.config_file).with_overrides(db=db)
            except ConfigError as exc:
                raise MoodindexError(str(exc), exit_code=2) from exc
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from indexer.db.session import DatabaseError, open_db

            try:
                self._engine = open_db(self.settings.db)
            except DatabaseError as exc:
                raise MoodindexError(str(exc)) from exc
        return self._engine


def echo_paths(paths: Iterable[str], nul: bool = False) -> None:
    """`--format paths` (one a line) or NUL-separated: each name's exact bytes, so that a name
    that is not UTF-8 reaches xargs and the plugins as the file system spells it."""
    import click

    end = b"\0" if nul else b"\n"
    for path in paths:
        click.echo(path_bytes(path) + end, nl=False)


def emit_json(data: object) -> None:
    """Every command's `--format json` output: indented, UTF-8 kept, dates as ISO text.  Text that
    still holds a byte that is not UTF-8 (a name quoted in a message) is escaped as
    `paths.escape_path` does: the output stays valid JSON in UTF-8."""
    import json

    import click

    click.echo(json.dumps(_printable(data), indent=2, ensure_ascii=False, default=str))


def _printable(data: object) -> object:
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            return escape_path(data)
        return data
    if isinstance(data, dict):
        return {_printable(k): _printable(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_printable(v) for v in data]
    return data
