"""Commands of one area; `register` adds them to the main group."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Nothing here yet."""
