"""roots add|list|remove (the folders `index`, `watch` and the service use, kept in the config file)
and forget (drop a folder's photos from the index on purpose)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from indexer.cli.context import AppContext, MoodindexError, emit_json
from indexer.cli.options import text_json_option


def register(group: click.Group) -> None:
    group.add_command(roots_group)
    group.add_command(forget_cmd)


def _config(app: AppContext) -> Path:
    from indexer.config import config_file_path

    return config_file_path(app.config_file)


def _roots(path: Path) -> list[str]:
    from indexer.config import ConfigError
    from indexer.config_edit import configured_roots

    try:
        return configured_roots(path)
    except ConfigError as exc:
        raise MoodindexError(str(exc), 2) from exc


def _write(path: Path, roots: list[str]) -> None:
    from indexer.config import ConfigError
    from indexer.config_edit import write_roots

    try:
        write_roots(path, roots)
    except ConfigError as exc:
        raise MoodindexError(str(exc)) from exc
    except OSError as exc:
        raise MoodindexError(f"cannot write {path}: {exc.strerror or exc}") from exc


@click.group("roots")
def roots_group() -> None:
    """The photo folders `index` (without PATHs), `watch` and the service use: kept as `roots` in the
    config file, whose comments and other settings are left as they are."""


@roots_group.command("list")
@text_json_option()
@click.pass_obj
def roots_list(app: AppContext, fmt: str) -> None:
    """The configured roots, and whether each is there now."""
    from indexer.paths import normalise_path

    config = _config(app)
    items = [{"root": r, "path": normalise_path(r), "found": os.path.isdir(normalise_path(r))} for r in _roots(config)]
    if fmt == "json":
        emit_json(items)
        return
    for it in items:
        click.echo(it["path"] + ("" if it["found"] else "  (not found: unmounted? its photos stay in the index)"))
    if not items:
        click.echo(f"no roots in {config}; add one with `moodindex roots add PATH`", err=True)


@roots_group.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_obj
def roots_add(app: AppContext, paths: tuple[Path, ...]) -> None:
    """Add folders to the roots (each must exist).  A folder already there, or inside one, is not
    added twice.  A running `watch` or service picks the change up when it restarts."""
    from indexer.config_edit import same_root
    from indexer.paths import is_under, normalise_path

    config = _config(app)
    roots = _roots(config)
    added = []
    for p in paths:
        path = normalise_path(p)
        inside = next((r for r in roots if is_under(path, normalise_path(r))), None)
        if inside is not None:
            said = "already a root" if same_root(inside, path) else f"already inside the root {normalise_path(inside)}"
            click.echo(f"{path}: {said}", err=True)
            continue
        roots.append(path)
        added.append(path)
    if added:
        _write(config, roots)
        for path in added:
            click.echo(f"added {path} to {config}")


@roots_group.command("remove")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_obj
def roots_remove(app: AppContext, paths: tuple[Path, ...]) -> None:
    """Stop using folders as roots (they need not exist any more).  Their photos stay in the index:
    `moodindex forget PATH` removes them."""
    from indexer.config_edit import same_root
    from indexer.paths import normalise_path

    config = _config(app)
    roots = _roots(config)
    unknown = [p for p in paths if not any(same_root(r, str(p)) for r in roots)]
    if unknown:
        raise MoodindexError("; ".join(f"{normalise_path(p)}: not a root in {config}" for p in unknown), 2)
    kept = [r for r in roots if not any(same_root(r, str(p)) for p in paths)]
    _write(config, kept)
    for p in paths:
        click.echo(f"removed {normalise_path(p)} from {config}; its photos stay in the index "
                   f"(`moodindex forget {normalise_path(p)}` removes them)")


@click.command("forget")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def forget_cmd(app: AppContext, path: Path, yes: bool) -> None:
    """Remove the photos of PATH (a folder, or one file) from the index, with their faces and
    names: the way to drop the photos of a root that is gone for good (a missing root otherwise
    keeps them).  Files on disk are not touched; your corrections are kept and come back with the
    photos if they are indexed again.  Asks first, unless --yes."""
    from indexer.config_edit import same_root
    from indexer.db.location import exists as index_exists
    from indexer.db.photos import forget_under, rows_under
    from indexer.paths import is_under, normalise_path

    target = normalise_path(path)
    if not index_exists(app.settings.db):
        click.echo("the index is empty: nothing to forget", err=True)
        return
    n = rows_under(app.engine, target)
    if n == 0:
        click.echo(f"{target}: nothing in the index there", err=True)
        return
    what = f"{n} photo{'s' if n != 1 else ''} under {target}" if n != 1 or os.path.isdir(target) else target
    if not yes:
        click.confirm(f"Forget {what}? Files on disk are not touched", abort=True, err=True)
    forgotten = forget_under(app.engine, target)
    click.echo(f"forgot {forgotten} photo{'s' if forgotten != 1 else ''} under {target}")
    roots = _roots(_config(app))
    if any(same_root(r, target) or is_under(target, normalise_path(r)) for r in roots):
        click.echo(f"note: {target} is still in the roots: the next `moodindex index` adds back what is there "
                   f"(`moodindex roots remove {target}` stops that)", err=True)
