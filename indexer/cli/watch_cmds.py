"""watch (the background indexer) and service install/uninstall (its systemd user unit)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import click

from indexer.cli.context import AppContext, MoodindexError
from indexer.cli.options import detector_option, no_upgrade_option, workers_option
from indexer.cli.stop_signals import GracefulStop


def register(group: click.Group) -> None:
    group.add_command(watch_cmd)
    group.add_command(service_group)


def _config_file(app: AppContext) -> Path:
    """The config file these settings came from (or would come from)."""
    from indexer.config import config_file_path

    return config_file_path(app.config_file)


def _no_roots(app: AppContext, command: str) -> MoodindexError:
    return MoodindexError(f"no folders to watch: give them (`moodindex {command} PATH...`) or set "
                          f"roots = [\"~/Pictures\"] in {_config_file(app)}", 2)


@click.command("watch")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--poll", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Poll every SECONDS instead of using inotify (network shares where inotify does not fire).")
@click.option("--settle", type=click.FloatRange(min=0, max=3600), default=2.0, show_default=True,
              metavar="SECONDS",
              help="A file is complete once its size and mtime stay put this long (when no close-write is seen).")
@click.option("--rescan", type=click.FloatRange(min=1), default=300.0, show_default=True, metavar="SECONDS",
              help="Full rescan period if live events fail (inotify watch limit, event queue overflow).")
@click.option("--recheck", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS",
              help="How often roots are checked for being unmounted or back.")
@workers_option("Worker processes for bursts [default: workers setting, CPU count].")
@detector_option()
@no_upgrade_option()
@click.pass_obj
def watch_cmd(app: AppContext, paths: tuple[Path, ...], poll: float | None, settle: float, rescan: float,
              recheck: float, workers: int | None, detector: str | None, no_upgrade: bool) -> None:
    """Keep the index in step with photo folders, in the foreground (for systemd or a terminal).

    Folders come from PATHs or `roots` in the config file.  On start it catches up with what
    changed while it was not running; then new, changed, moved and deleted photos are reflected
    within seconds.  Logs one line per batch to stderr.  SIGTERM or Ctrl-C finishes the current
    photo and exits 0."""
    from indexer.scan import Indexer
    from indexer.vision.errors import DetectorError, ModelError
    from indexer.watch import Watcher, WatchError, WatchOptions

    settings = app.settings.with_overrides(workers=workers, detector=detector)
    roots = paths or settings.roots
    if not roots:
        raise _no_roots(app, "watch")
    if app.verbosity == 0:
        logging.getLogger("indexer.watch").setLevel(logging.INFO)  # the daemon's one line per batch
    # watchdog re-adding a watch for a folder moved back in: harmless, and its message is a screenful
    warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)
    options = WatchOptions(settle=settle, poll=poll, rescan=rescan, recheck=recheck)
    indexer = Indexer(app.engine, settings, upgrade=not no_upgrade)
    try:
        watcher = Watcher(indexer, roots, options)
    except WatchError as exc:
        raise MoodindexError(str(exc), 2) from exc

    def finish_then_stop(signal_name: str) -> None:
        logging.getLogger("indexer.watch").info("%s: finishing the current photo, then stopping", signal_name)
        indexer.stop.set()
        watcher.wake()

    with GracefulStop(finish_then_stop):
        try:
            watcher.run()
        except (ModelError, DetectorError) as exc:
            raise MoodindexError(str(exc)) from exc


@click.group("service")
def service_group() -> None:
    """Run `moodindex watch` in the background as a systemd user service."""


@service_group.command("install")
@click.option("--user", "user", is_flag=True, default=True, help="A user unit (the only kind; the default).")
@click.option("--print", "print_only", is_flag=True, help="Print the unit instead of writing it.")
@click.pass_obj
def service_install(app: AppContext, user: bool, print_only: bool) -> None:
    """Write ~/.config/systemd/user/moodindex-watch.service for the roots in the config file."""
    from indexer.service import ENABLE_COMMAND, ServiceError, install, launcher, unit_path, unit_text

    settings = app.settings
    if not settings.roots:
        raise MoodindexError(f"no roots configured: add roots = [\"~/Pictures\"] to {_config_file(app)} "
                             "(the service watches the folders listed there), then run this again", 2)
    config = _config_file(app)
    if not config.exists():
        raise MoodindexError(f"{config}: config file not found (the service reads its roots from it)", 2)
    try:
        text = unit_text(launcher(), config_file=config, db=settings.db)
        if print_only:
            click.echo(text, nl=False)
            return
        path = unit_path()
        changed = install(text, path)
    except ServiceError as exc:
        raise MoodindexError(str(exc)) from exc
    missing = [str(r) for r in settings.roots if not Path(r).expanduser().is_dir()]
    click.echo(f"{'wrote' if changed else 'unchanged:'} {path}")
    click.echo(f"it watches the roots in {config}: " + ", ".join(str(r) for r in settings.roots))
    if missing:
        click.echo("not there now (paused until they appear): " + ", ".join(missing))
    click.echo("enable and start it with:")
    click.echo(f"  {ENABLE_COMMAND}")
    click.echo("logs: journalctl --user -u moodindex-watch.service -f")
    click.echo("to keep it running while you are logged out: loginctl enable-linger")


@service_group.command("uninstall")
@click.option("--user", "user", is_flag=True, default=True, help="The user unit (the only kind; the default).")
def service_uninstall(user: bool) -> None:
    """Remove the unit written by `service install` (and its enablement link)."""
    from indexer.service import STOP_COMMAND, ServiceError, uninstall, unit_path

    path = unit_path()
    try:
        removed = uninstall(path)
    except ServiceError as exc:
        raise MoodindexError(str(exc)) from exc
    if not removed:
        click.echo(f"nothing to remove: {path} does not exist")
        return
    for p in removed:
        click.echo(f"removed {p}")
    click.echo("stop the running service and reload systemd with:")
    click.echo(f"  {STOP_COMMAND}")
