"""Options that several commands share, declared once (osxphotos-style reusable decorators).

Each is a function returning a click decorator, so a command can reword the help where the option
means something a little different there (--dry-run on `digikam sync` also skips the backup)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from indexer.domain import DEFAULT_TAG_MIN_SCORE, DETECTOR_CHOICES
from indexer.export.tags import DEFAULT_PREFIX

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

TAG_MIN_SCORE_HELP = (f"A face makes a tag when its top emotion's probability reaches this "
                      f"[default: tag_min_score setting, {DEFAULT_TAG_MIN_SCORE:g}].")
FILTER_MIN_SCORE_HELP = "Leave out photos scoring below this (0..1)."
DRY_RUN_HELP = "Show what would change; write nothing."


def min_score_option(help: str = TAG_MIN_SCORE_HELP) -> Decorator:  # noqa: A002 (click's own word)
    return click.option("--min-score", type=click.FloatRange(0.0, 1.0), default=None, help=help)


def prefix_option(help: str = "Parent tag: Emotion|Happy, Emotion/Happy.") -> Decorator:  # noqa: A002
    return click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help=help)


def dry_run_option(help: str = DRY_RUN_HELP) -> Decorator:  # noqa: A002
    return click.option("--dry-run", is_flag=True, help=help)


def exif_only_option() -> Decorator:
    return click.option("--exif-only", is_flag=True, help="Leave out photos whose date is only the file's time "
                        "(dates from EXIF or XMP, in the file or a sidecar, are kept).")


def hemisphere_option() -> Decorator:
    return click.option("--hemisphere", type=click.Choice(["north", "south"]), default="north", show_default=True,
                        envvar="MOODINDEX_HEMISPHERE",
                        help="For seasons: summer is June-August in the north, December-February in the south.")


def detector_option() -> Decorator:
    return click.option("--detector", type=click.Choice(DETECTOR_CHOICES),
                        help="Face detector [default: detector setting, auto = best installed].")


def no_upgrade_option() -> Decorator:
    return click.option("--no-upgrade", is_flag=True,
                        help="Do not re-analyse unchanged photos that an older detector or model analysed.")


def workers_option(help: str = "Worker processes [default: workers setting, CPU count].") -> Decorator:  # noqa: A002
    return click.option("--workers", "-j", type=click.IntRange(1, 64), help=help)


def text_json_option(help: str | None = None) -> Decorator:  # noqa: A002
    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                        help=help)
