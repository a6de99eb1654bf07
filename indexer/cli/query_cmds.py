"""`moodindex query` and `moodindex gallery`: find photos by emotion, date, people and folder."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import click

from indexer.cli.context import AppContext, MoodindexError
from indexer.cli.options import FILTER_MIN_SCORE_HELP, exif_only_option, hemisphere_option, min_score_option

if TYPE_CHECKING:
    from indexer.query import Match, Query

_EXAMPLES = """\b
Examples:
  moodindex query sad photos from 2019
  moodindex query the 20 happiest pictures of last summer
  moodindex query happy or surprised group photos last summer
  moodindex query 'emotion:sad year:2018..2020 path:Trips faces:2+ score:0.7'
  moodindex query --format paths angry 2021 | xargs -d '\\n' ls -l
  moodindex gallery smiling portraits in March 2019 -o march.html --open

\b
Words: emotions and synonyms (happy, smiling, sad, crying, angry, mad, surprised,
shocked, scared, disgusted, grossed out, neutral, calm, serious ...), "or", "group"
(3+ faces), "alone"/"portraits" (1 face), "couple" (2 faces). Counts and superlatives:
"the 20 happiest", "top 10 surprised", "5 saddest photos", "most fearful".
Dates: 2019, March 2019, 2019-06, 2019-06-01, 2018-2020, from/in/before/after/since/
until X, between X and Y, last year, this month, last 30 days, summer 2021 (meteorological
seasons, northern hemisphere unless --hemisphere south).
{filters}
Without emotion words results are newest first; with them, best score first (a photo's
score is its most confident face of that emotion). Dates from file times are marked ~.
"""


class QueryCommand(click.Command):
    """Its epilog lists the filters from their registry (query/filters.py), read only when help is
    shown: importing the query package loads SQLAlchemy, which `moodindex --help` must not."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from indexer.query.filters import help_examples

        self.epilog = _EXAMPLES.replace("{filters}", textwrap.fill(f"Filters: {help_examples()}.", 90))
        super().format_epilog(ctx, formatter)


FORMATS = click.Choice(["table", "paths", "json", "csv"])


def register(group: click.Group) -> None:
    group.add_command(query_cmd)
    group.add_command(gallery_cmd)


def _find(app: AppContext, words: tuple[str, ...], limit: int | None, min_score: float | None, exif_only: bool,
          hemisphere: str, default_limit: int) -> tuple[Query, list[Match]]:
    """Parse and run; an empty result is explained on stderr (exit status stays 0)."""
    from indexer.db.people import known_names
    from indexer.db.session import session_scope
    from indexer.query import QueryError, count_indexed, parse, search
    from indexer.query.explain import explain_empty

    text = " ".join(words)
    with session_scope(app.engine) as session:
        names = known_names(session)
    try:
        query = parse(text, hemisphere=hemisphere, people=names)
    except QueryError as exc:
        raise MoodindexError(str(exc), exit_code=2) from exc
    if limit is None:  # no --limit: the query's own count ("the 50 happiest"), else the default
        limit = query.top or default_limit
    with session_scope(app.engine) as session:
        matches = search(session, query, limit=limit or None, min_score=min_score, exif_only=exif_only)
        if not matches:
            if count_indexed(session) == 0:
                click.echo("moodindex: the index has no photos yet; run `moodindex index FOLDER` first", err=True)
            else:
                extra = " with EXIF or XMP dates" if exif_only else ""
                floor = f", score >= {min_score:g}" if min_score is not None else ""
                click.echo(f"moodindex: no photos{extra} match: {query.describe()}{floor}", err=True)
                for line in explain_empty(session, query, min_score, exif_only):
                    click.echo(f"moodindex:   {line}", err=True)
    return query, matches


def _date_text(match: Match) -> str:
    taken = match.photo.taken_at
    if taken is None:
        return "-"
    return taken.strftime("%Y-%m-%d %H:%M") + ("~" if match.date_estimated else " ")


def _record(match: Match) -> dict:
    """The JSON/CSV record: exactly the documented keys."""
    from indexer.paths import path_json

    taken = match.photo.taken_at
    return {
        **path_json(match.photo.path),
        "score": None if match.score is None else round(match.score, 4),
        "emotion": match.emotion,
        "taken_at": taken.isoformat(timespec="seconds") if taken else None,
        "date_source": match.photo.date_source,
        "faces": match.faces,
        "person": match.face.person.name if match.face is not None and match.face.person is not None else None,
        "people": [p.name for p in match.photo.people],
    }


def _print_table(matches: list[Match]) -> None:
    from indexer.paths import display_path

    click.echo(f"{'SCORE':>5}  {'EMOTION':8} {'FACES':>5}  {'TAKEN':17}  PATH")
    for m in matches:
        score = "-" if m.score is None else f"{m.score:.2f}"
        click.echo(f"{score:>5}  {m.emotion or '-':8} {m.faces:>5}  {_date_text(m):17}  {display_path(m.photo.path)}")
    if any(m.date_estimated for m in matches):
        click.echo("~ date estimated from the file's time (no EXIF or XMP date); --exif-only leaves these out")


def _print_paths(matches: list[Match], nul: bool) -> None:
    from indexer.cli.context import echo_paths

    echo_paths((m.photo.path for m in matches), nul)
    if not nul and any("\n" in m.photo.path for m in matches):
        click.echo("moodindex: warning: some paths contain a newline; use --null (-0) with xargs -0", err=True)
    estimated = sum(m.date_estimated for m in matches)
    if estimated:
        have = "has a date" if estimated == 1 else "have dates"
        click.echo(f"moodindex: note: {estimated} of these photos {have} estimated from file times "
                   "(--exif-only leaves them out)", err=True)


def _print_csv(matches: list[Match]) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["path", "score", "emotion", "taken_at", "date_source", "faces", "person",
                                             "people"], lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for m in matches:
        record = _record(m)
        writer.writerow({**record, "people": "; ".join(record["people"])})
    click.echo(buf.getvalue(), nl=False)


@click.command("query", cls=QueryCommand)
@click.argument("text", nargs=-1)
@click.option("--limit", "-n", type=click.IntRange(min=0), default=None,
              help="Most results to show (0 = all)  [default: the query's count, as in 'the 50 happiest', else 20]")
@min_score_option(FILTER_MIN_SCORE_HELP)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True,
              help="table for people; paths (one per line) for xargs; json or csv for programs.")
@exif_only_option()
@click.option("--null", "-0", "nul", is_flag=True, help="With --format paths: end each path with NUL (xargs -0).")
@hemisphere_option()
@click.pass_obj
def query_cmd(app: AppContext, text: tuple[str, ...], limit: int | None, min_score: float | None, fmt: str,
              exif_only: bool, nul: bool, hemisphere: str) -> None:
    """Find photos: TEXT like "sad photos from 2019" (no quotes needed). Empty TEXT lists every
    photo with faces, newest first."""
    import json

    _, matches = _find(app, text, limit, min_score, exif_only, hemisphere, default_limit=20)
    if fmt == "json":
        click.echo(json.dumps([_record(m) for m in matches], indent=2, ensure_ascii=False))
    elif fmt == "csv":
        _print_csv(matches)
    elif fmt == "paths":
        _print_paths(matches, nul)
    elif matches:
        _print_table(matches)


@click.command("gallery", cls=QueryCommand)
@click.argument("text", nargs=-1)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True,
              help="The HTML file to write (one self-contained file: thumbnails are embedded).")
@click.option("--open", "open_page", is_flag=True, help="Open the page in the default browser afterwards.")
@click.option("--limit", "-n", type=click.IntRange(min=0), default=None,
              help="Most photos on the page (0 = all)  [default: the query's count, else 48]")
@min_score_option(FILTER_MIN_SCORE_HELP)
@exif_only_option()
@click.option("--thumb-size", type=click.IntRange(64, 2048), default=480, show_default=True,
              help="Long side of the embedded thumbnails, in pixels.")
@hemisphere_option()
@click.pass_obj
def gallery_cmd(app: AppContext, text: tuple[str, ...], output: Path, open_page: bool, limit: int | None,
                min_score: float | None, exif_only: bool, thumb_size: int, hemisphere: str) -> None:
    """Write the results of a query as an HTML page of thumbnails with each face's box,
    emotion bars, date and score."""
    from indexer.report.gallery import write_gallery

    query, matches = _find(app, text, limit, min_score, exif_only, hemisphere, default_limit=48)
    if not matches:
        return  # explained on stderr; no page written
    try:
        stats = write_gallery(matches, output, title=" ".join(text) or "all photos with faces",
                              subtitle=query.describe(), thumb_px=thumb_size)
    except OSError as exc:
        raise MoodindexError(f"cannot write {output}: {exc.strerror or exc}") from exc
    note = f" ({stats.missing} could not be read and show no preview)" if stats.missing else ""
    click.echo(f"wrote {output} with {stats.photos} photos{note}", err=True)
    if open_page:
        click.launch(str(output.resolve()))
