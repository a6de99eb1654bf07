"""`tag`, `untag` and `digikam sync`: emotion tags where photo managers look for them."""

from __future__ import annotations

from pathlib import Path

import click

from indexer.cli.context import AppContext, MoodindexError
from indexer.cli.options import dry_run_option, min_score_option, prefix_option


def _min_score(app: AppContext, given: float | None) -> float:
    """--min-score, else the `tag_min_score` setting (whose default is the domain's)."""
    return app.settings.tag_min_score if given is None else given


def _check_prefix(prefix: str) -> str:
    from indexer.export.tags import TagError, check_tag_text

    try:
        return check_tag_text(prefix, "--prefix")
    except TagError as exc:
        raise MoodindexError(str(exc), exit_code=2) from exc


def _index_keeper(app: AppContext):  # noqa: ANN202 - tagging's on_rewritten hook
    """Records a photo's new size, mtime and hash after its own metadata was rewritten, so the next
    scan does not re-run the models on it.  None without an index (`tag-file` needs none and must
    not create one)."""
    from indexer.db.location import exists
    from indexer.db.photos import record_metadata_rewrite

    if not exists(app.settings.db):
        return None
    return lambda photo: record_metadata_rewrite(app.engine, photo)


def _sidecar_keeper(app: AppContext):  # noqa: ANN202 - tagging's on_sidecar hook
    """Records a photo's sidecars after we wrote one, so the next scan does not read them again
    (db.photos.record_sidecar_write says when it may)."""
    from indexer.db.location import exists
    from indexer.db.photos import record_sidecar_write

    if not exists(app.settings.db):
        return None
    return lambda photo, before: record_sidecar_write(app.engine, photo, before)


def _reporter(verbosity: int):  # noqa: ANN202 - echoing callback
    from indexer.export import xmp
    from indexer.paths import display_path

    def report(outcome: xmp.Outcome) -> None:
        if not outcome.ok:
            click.echo(f"{outcome.status}: {outcome.message}", err=True)
        elif outcome.status in (xmp.WRITTEN, xmp.WOULD_WRITE, xmp.REMOVED) and verbosity >= 0:
            changes = [f"+{a}" for a in outcome.added] + [f"-{r}" for r in outcome.removed]
            click.echo(f"{outcome.status}: {display_path(outcome.target)}"
                       + (f"  ({', '.join(changes)})" if changes else ""))

    return report


def _finish(summary, what: str, app: AppContext) -> None:  # noqa: ANN001
    if app.verbosity >= 0 or summary.failed:
        click.echo(f"{what}: {summary.line()}", err=bool(summary.failed))
    if summary.failed:
        raise click.exceptions.Exit(1)


def _photos(app: AppContext, query: str | None, min_score: float | None, untag: bool, sidecar_mode: bool):
    from indexer.db.session import session_scope
    from indexer.export.selection import SelectionError, photos_to_tag, photos_to_untag

    try:
        with session_scope(app.engine) as session:
            if untag:
                photos = photos_to_untag(session, query)
            else:
                photos = photos_to_tag(session, query, min_score=min_score, with_old_sidecars=sidecar_mode)
            for p in photos:  # load faces inside the session
                _ = list(p.faces)
            session.expunge_all()
            return photos
    except SelectionError as exc:
        raise MoodindexError(str(exc), exit_code=2) from exc


def _exiftool():  # noqa: ANN202
    from indexer.export.exiftool import ExifTool, ExifToolError

    try:
        return ExifTool()
    except ExifToolError as exc:
        raise MoodindexError(str(exc)) from exc


@click.command("tag")
@click.argument("query", nargs=-1)
@click.option("--sidecar", "mode", flag_value="sidecar", default=True,
              help="Write NAME.EXT.xmp sidecars beside the photos [default].")
@click.option("--in-file", "mode", flag_value="in-file",
              help="Embed XMP (and IPTC Keywords) in JPEG, TIFF, PNG, WebP; RAW still gets a sidecar.")
@min_score_option()
@prefix_option()
@dry_run_option()
@click.pass_obj
def tag_cmd(app: AppContext, query: tuple[str, ...], mode: str, min_score: float | None, prefix: str,
            dry_run: bool) -> None:
    """Write emotion tags for digiKam, darktable, Lightroom into photo metadata.

    QUERY selects photos (same language as `moodindex query`: several words, no quotes needed);
    without it every indexed photo with faces is tagged.  Re-running is safe: only tags moodindex wrote are replaced."""
    from indexer.export.tagging import tag_photos

    prefix = _check_prefix(prefix)
    score = _min_score(app, min_score)
    photos = _photos(app, " ".join(query) or None, min_score, untag=False, sidecar_mode=(mode == "sidecar"))
    with _exiftool() as et:
        summary = tag_photos(photos, mode=mode, min_score=score, prefix=prefix, dry_run=dry_run,
                             on_outcome=_reporter(app.verbosity), on_rewritten=_index_keeper(app),
                             on_sidecar=_sidecar_keeper(app), exiftool=et)
    _finish(summary, f"tag ({_where_written(mode, summary)}{', dry run' if dry_run else ''})", app)


def _where_written(mode: str, summary) -> str:  # noqa: ANN001 (tagging.Summary)
    """--in-file on a format exiftool must not rewrite (HEIC, RAW) writes a sidecar: say so."""
    if mode != "in-file" or not summary.sidecar_writes:
        return mode
    if not summary.in_file_writes:
        return "sidecar: these formats are not rewritten in place"
    return f"in-file, {summary.sidecar_writes} as sidecars"


@click.command("untag")
@click.argument("query", nargs=-1)
@click.option("--sidecar", "mode", flag_value="sidecar", help="Only sidecars.")
@click.option("--in-file", "mode", flag_value="in-file", help="Only tags embedded in the files.")
@dry_run_option()
@click.pass_obj
def untag_cmd(app: AppContext, query: tuple[str, ...], mode: str | None, dry_run: bool) -> None:
    """Remove exactly the tags moodindex wrote (sidecars and files; a sidecar that moodindex
    created and that holds nothing else is deleted).  Other tags are never touched."""
    from indexer.export import xmp
    from indexer.export.tagging import untag_photos

    modes = (mode,) if mode else (xmp.SIDECAR, xmp.IN_FILE)
    photos = _photos(app, " ".join(query) or None, None, untag=True, sidecar_mode=True)
    with _exiftool() as et:
        summary = untag_photos(photos, modes=modes, dry_run=dry_run, on_outcome=_reporter(app.verbosity),
                               on_rewritten=_index_keeper(app), on_sidecar=_sidecar_keeper(app), exiftool=et)
    _finish(summary, f"untag{' (dry run)' if dry_run else ''}", app)


@click.command("tag-file")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Copy FILE here first and tag the copy (digiKam's Batch Queue Manager: $OUTPUT).")
@click.option("--sidecar", "mode", flag_value="sidecar", help="Write FILE.xmp instead of embedding.")
@click.option("--in-file", "mode", flag_value="in-file", default=True, help="Embed the tags [default].")
@min_score_option()
@prefix_option("Parent tag.")
@dry_run_option()
@click.pass_obj
def tag_file_cmd(app: AppContext, file: Path, output: Path | None, mode: str, min_score: float | None,
                 prefix: str, dry_run: bool) -> None:
    """Analyse one FILE (no index needed) and tag it, or a copy of it at --output."""
    from indexer.domain import STATUS_OK
    from indexer.export import xmp
    from indexer.export.safety import UnsafeTarget, copy_photo
    from indexer.export.tags import emotions_for_faces
    from indexer.pipeline import Analyzer

    prefix = _check_prefix(prefix)
    score = _min_score(app, min_score)
    st = app.settings
    try:
        result = Analyzer.from_settings(st).analyze(file)
    except Exception as exc:  # model or detector missing: one clear line
        raise MoodindexError(f"cannot analyse {file}: {exc}") from exc
    if result.status != STATUS_OK:
        raise MoodindexError(f"cannot analyse {file}: {result.error}")
    target = file.absolute()
    if output is not None:
        target = output.absolute()
        if not dry_run and target != file.absolute():
            try:
                copy_photo(file, output, st.max_file_bytes)
            except UnsafeTarget as exc:
                raise MoodindexError(f"refused: {exc}") from exc
            except OSError as exc:
                raise MoodindexError(f"cannot copy {file} to {target}: {exc.strerror or exc}") from exc
    if mode == "in-file" and xmp.mode_for(target, mode) != xmp.IN_FILE:
        raise MoodindexError(f"{target.name}: tags cannot be embedded in this format; use --sidecar")
    emotions = emotions_for_faces(result.faces, score)
    with _exiftool() as et:
        outcome = xmp.apply(et, target, target.parent, emotions, mode=mode, prefix=prefix, dry_run=dry_run)
    keep_index = _index_keeper(app) if outcome.rewrote_photo else None
    if keep_index:
        keep_index(outcome.photo)
    _reporter(app.verbosity)(outcome)
    if not outcome.ok:
        raise click.exceptions.Exit(1)
    if app.verbosity >= 0 and outcome.status == xmp.UNCHANGED:
        from indexer.paths import display_path

        why = ", ".join(emotions) or "no emotion above the threshold"
        click.echo(f"unchanged: {display_path(outcome.target)} ({why})")


@click.group("digikam")
def digikam_group() -> None:
    """digiKam integration (see also plugins/digikam/)."""


@digikam_group.command("sync")
@click.option("--digikam-db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="digiKam's digikam4.db [default: from ~/.config/digikamrc, else ~/Pictures/digikam4.db].")
@min_score_option()
@prefix_option("Parent tag in digiKam's tag tree.")
@click.option("--remove", "remove_only", is_flag=True, help="Take back every tag assignment moodindex made.")
@dry_run_option("Count what would change; write nothing (no backup either).")
@click.pass_obj
def digikam_sync_cmd(app: AppContext, digikam_db: Path | None, min_score: float | None, prefix: str,
                     remove_only: bool, dry_run: bool) -> None:
    """Write emotion tags into digiKam's database (digiKam must be closed; a backup is made first),
    and read the faces named there (People tags with their rectangles) into the index."""
    from indexer.db.session import session_scope
    from indexer.export import digikam
    from indexer.export.selection import photos_to_untag

    prefix = _check_prefix(prefix)
    score = _min_score(app, min_score)
    db = digikam_db or digikam.default_database()
    with session_scope(app.engine) as session:
        photos = photos_to_untag(session)  # every indexed photo: faceless ones lose our old tags
        try:
            report = digikam.sync(db, photos, min_score=score, prefix=prefix, remove_only=remove_only,
                                  dry_run=dry_run)
        except digikam.DigikamError as exc:
            raise MoodindexError(str(exc)) from exc
    if not dry_run and report.people:
        from indexer.db.people import store_digikam_regions
        from indexer.db.session import in_transaction

        in_transaction(app.engine, lambda s: store_digikam_regions(s, report.people))
    for root in report.unresolved_roots:
        click.echo(f"warning: cannot locate digiKam album root {root}; its photos were not matched", err=True)
    if app.verbosity >= 0:
        click.echo(f"digikam sync{' (dry run)' if dry_run else ''}: {report.line()}")
        if report.created_tags:
            click.echo(f"created tags: {', '.join(report.created_tags)}")


def register(group: click.Group) -> None:
    group.add_command(tag_cmd)
    group.add_command(untag_cmd)
    group.add_command(tag_file_cmd)
    group.add_command(digikam_group)
