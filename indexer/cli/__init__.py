"""The `moodindex` command: click groups only; each command parses options, calls one
function below the CLI, and prints.  Command modules import heavy libraries lazily so
that `moodindex --help` and `query` start fast."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from indexer import __version__
from indexer.cli.context import AppContext, MoodindexError


class Group(click.Group):
    """Turns every expected failure into one clear line on stderr, and anything
    unexpected into a short message (full traceback only with -v)."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except MoodindexError as exc:
            click.echo(f"moodindex: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("moodindex: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            sys.stderr.close()  # `moodindex list | head`: not an error
            ctx.exit(0)
        except Exception as exc:  # never a traceback for the user, unless asked for
            from indexer.db.session import database_error_message

            if message := database_error_message(exc):  # disk full & co.: one line, no SQLAlchemy link
                click.echo(f"moodindex: {message}", err=True)
                ctx.exit(1)
            app = ctx.find_object(AppContext)
            if app is not None and app.verbosity > 0:
                logging.getLogger("moodindex").exception("internal error")
            from indexer.db.location import scrub

            click.echo(scrub(f"moodindex: internal error: {type(exc).__name__}: {exc} (run with -v for details)"),
                       err=True)
            ctx.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--db", "db", metavar="PATH|URL", envvar="MOODINDEX_DB",
              help="Index database: a SQLite file, or postgresql://user@host:port/dbname "
                   "[env MOODINDEX_DB; default: user data dir/moodindex/index.db].")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), envvar="MOODINDEX_CONFIG",
              help="TOML settings file [default: user config dir/moodindex/config.toml].")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(__version__, prog_name="moodindex")
@click.pass_context
def main(ctx: click.Context, db: str | None, config: Path | None, verbose: int, quiet: bool) -> None:
    """Find photos by the emotions on the faces in them."""
    verbosity = -1 if quiet else verbose
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    _never_fail_on_a_name()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = AppContext(config_file=config, db_flag=db, verbosity=verbosity)


def _never_fail_on_a_name() -> None:
    """A file name that is not UTF-8 is shown escaped where we print it (paths.display_path); any
    other text that still holds such a byte is written with a backslash escape instead of
    stopping the command."""
    from indexer.paths import ESCAPE_ERRORS

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors=ESCAPE_ERRORS)
        except (AttributeError, ValueError, OSError):  # not a text file we own: leave it
            pass


def _register() -> None:
    from indexer.cli import (
        correct_cmds,
        db_cmds,
        index_cmds,
        model_cmds,
        people_cmds,
        plugin_cmds,
        query_cmds,
        roots_cmds,
        tag_cmds,
        watch_cmds,
    )

    for module in (correct_cmds, db_cmds, index_cmds, model_cmds, people_cmds, plugin_cmds, query_cmds, roots_cmds,
                   tag_cmds, watch_cmds):
        module.register(main)


_register()
