"""Where the index lives: a SQLite file (a path) or a database server (a `postgresql://` URL).

One place decides which a `--db` / `MOODINDEX_DB` / config `db` value is, and how it is shown: a
server URL is only ever displayed with its password masked.  Light: SQLAlchemy is imported only
when a URL has to be parsed, so `moodindex --help` stays fast.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DbLocation = Path | str  # a Path is a SQLite file; a str is a server URL
SERVER_SCHEMES = ("postgresql", "postgres")
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
POSTGRES_EXTRA_HINT = ("PostgreSQL support is not installed: install moodindex's [postgres] extra "
                       "(pip install 'moodindex[postgres]', which brings psycopg 3)")


class LocationError(ValueError):
    """A `db` value that names neither a file nor a supported server."""


def parse_location(value: str | Path) -> DbLocation:
    """A `postgresql://` URL stays a string; anything else is a path (`~` expanded).
    `sqlite:///...` is accepted and means the file.  Other URL schemes are refused."""
    if isinstance(value, Path):
        return Path(os.path.expanduser(str(value)))
    text = str(value).strip()
    match = _URL.match(text)
    if match is None:
        return Path(os.path.expanduser(text))
    scheme = match["scheme"].lower().split("+", 1)[0]
    if scheme in SERVER_SCHEMES:
        return text
    if scheme == "sqlite" and text.lower().startswith("sqlite:///"):
        return Path(os.path.expanduser(text[len("sqlite:///"):]))
    raise LocationError(f"db: unsupported database {match['scheme']}:// (use a file path or postgresql://...)")


def is_server(location: DbLocation) -> bool:
    return isinstance(location, str)


def display(location: DbLocation) -> str:
    """How the index is named in output, logs and errors: a URL's password is never shown."""
    if not is_server(location):
        return str(location)
    from sqlalchemy.engine import make_url

    try:
        return make_url(location).render_as_string(hide_password=True)
    except Exception:  # unparsable: show the scheme only, never what might be a password
        match = _URL.match(location)
        return f"{match['scheme'] if match else 'database'}://***"


_secrets: set[str] = set()  # passwords of the URLs opened in this process


def secret_of(location: DbLocation) -> str | None:
    """The password written in a server URL, if any."""
    if not is_server(location):
        return None
    from sqlalchemy.engine import make_url

    try:
        return make_url(location).password or None
    except Exception:
        return None


def remember_secret(location: DbLocation) -> None:
    """Note a URL's password, so that `scrub` can take it out of any message later."""
    if password := secret_of(location):
        _secrets.add(str(password))


def scrub(text: str, location: DbLocation | None = None) -> str:
    """`text` without any known password: the raw URL becomes its masked form, and every password
    of a URL opened in this process (or of `location`) becomes ***."""
    if location is not None and is_server(location):
        remember_secret(location)
        text = text.replace(str(location), display(location))
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def exists(location: DbLocation) -> bool:
    """Whether an index is there to use (a server is assumed to be: connecting says otherwise)."""
    return is_server(location) or Path(location).exists()
