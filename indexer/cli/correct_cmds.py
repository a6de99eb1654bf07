"""`moodindex correct` and `moodindex corrections`: the user's word on a face, kept apart from the
model's and applied everywhere (db/corrections.py)."""

from __future__ import annotations

from pathlib import Path

import click

from indexer.cli.context import AppContext, MoodindexError, emit_json
from indexer.cli.options import text_json_option


def register(group: click.Group) -> None:
    group.add_command(correct_cmd)
    group.add_command(corrections_cmd)


def _emotion(word: str) -> str:
    from indexer.domain import CLASSES
    from indexer.query.parse import EMOTION_WORDS

    found = EMOTION_WORDS.get(word.lower(), word.lower())
    if found not in CLASSES:
        raise MoodindexError(f"{word!r} is not an emotion (one of: {', '.join(CLASSES)})", exit_code=2)
    return found


@click.command("correct")
@click.argument("photo", type=click.Path(path_type=Path))
@click.argument("emotion", required=False)
@click.option("--face", "face_n", type=click.IntRange(min=0), help="Which face, numbered as `moodindex show` "
              "lists them; needed when the photo has several.")
@click.option("--not-a-face", is_flag=True, help="The detector was wrong: this is no face.")
@click.option("--clear", is_flag=True, help="Forget the correction (of --face N, or of the whole photo).")
@click.pass_obj
def correct_cmd(app: AppContext, photo: Path, emotion: str | None, face_n: int | None, not_a_face: bool,
                clear: bool) -> None:
    """Say what a face really shows: `moodindex correct PHOTO angry --face 1`.  The correction wins
    in queries, ranking, tags, the gallery and digiKam sync, and survives moves, renames,
    `index --force` and a new model."""
    from indexer.db.corrections import CorrectionError, correct
    from indexer.db.corrections import clear as clear_corrections
    from indexer.db.session import in_transaction
    from indexer.paths import normalise_path

    if sum((emotion is not None, not_a_face, clear)) != 1:
        raise MoodindexError("give one of: an EMOTION, --not-a-face or --clear", exit_code=2)
    path = normalise_path(photo)
    said = None if clear or not_a_face else _emotion(emotion or "")

    def work(s):  # noqa: ANN001, ANN202 - re-run whole when PostgreSQL asks (several writers)
        return clear_corrections(s, path, face_n) if clear else correct(s, path, said, face_n, not_a_face)

    try:
        outcome = in_transaction(app.engine, work)
    except CorrectionError as exc:
        raise MoodindexError(str(exc), exit_code=2) from exc
    click.echo(outcome.message)


@click.group("corrections", invoke_without_command=True)
@text_json_option("text for people; json for programs.")
@click.pass_context
def corrections_cmd(ctx: click.Context, fmt: str) -> None:
    """Every correction you made, newest first, with the photos it applies to.
    `corrections export DIR` writes them as training data."""
    if ctx.invoked_subcommand is not None:
        return
    app: AppContext = ctx.obj
    from sqlalchemy.orm import Session

    from indexer.db.corrections import list_corrections

    with Session(app.engine) as s:
        items = list_corrections(s)
    if fmt == "json":
        emit_json(items)
        return
    if not items:
        click.echo("moodindex: no corrections yet (`moodindex correct PHOTO EMOTION`)", err=True)
        return
    for c in items:
        what = "not a face" if c["not_a_face"] else f"not {c['not_emotion']}" if c["not_emotion"] else c["emotion"]
        where = ", ".join(c["paths"]) or "(photo not in the index now)"
        on = "whole photo" if c["photo_level"] else f"box {c['box']}"
        by = "  (your tags)" if c["source"] == "tags" else ""
        click.echo(f"{c['created_at']}  {what:12}  {on}  {where}{by}")


@corrections_cmd.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def corrections_export_cmd(app: AppContext, folder: Path) -> None:
    """Corrected faces as 48x48 grey PNGs (cut by THE preprocessing) and labels.csv, for
    `python models/training/train.py --extra FOLDER`."""
    from sqlalchemy.orm import Session

    from indexer.export.corrections import export_corrections

    with Session(app.engine) as s:
        summary = export_corrections(s, folder, app.settings.max_pixels, app.settings.max_file_bytes)
    click.echo(f"{summary.written} corrected faces written to {folder} (labels.csv)")
    for why in summary.skipped:
        click.echo(f"moodindex: skipped {why}", err=True)
