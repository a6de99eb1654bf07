"""`moodindex people`: the names read from the photos' metadata, with what their faces show."""

from __future__ import annotations

import click

from indexer.cli.context import AppContext, emit_json
from indexer.cli.options import text_json_option


def register(group: click.Group) -> None:
    group.add_command(people_cmd)


@click.command("people")
@text_json_option("text for people; json for programs.")
@click.pass_obj
def people_cmd(app: AppContext, fmt: str) -> None:
    """Everyone named in the photos (digiKam, Lightroom, Windows face regions): on how many photos,
    and the emotions their own face shows there.  Query them with "happy photos of NAME"."""
    from sqlalchemy.orm import Session

    from indexer.db.people import people_summary

    with Session(app.engine) as s:
        people = people_summary(s)
    if fmt == "json":
        emit_json(people)
        return
    if not people:
        click.echo("moodindex: no names yet: none of the indexed photos has named face regions", err=True)
        return
    width = max(len(p["name"]) for p in people)
    click.echo(f"{'NAME':{width}}  {'PHOTOS':>6}  {'FACES':>5}  EMOTIONS")
    for p in people:
        shown = ", ".join(f"{e} {n}" for e, n in sorted(p["emotions"].items(), key=lambda kv: -kv[1]) if n)
        click.echo(f"{p['name']:{width}}  {p['photos']:>6}  {p['faces']:>5}  {shown or '-'}")
