"""plugins install darktable|digikam: the host-application plugins shipped in the package."""

from __future__ import annotations

from pathlib import Path

import click

from indexer.cli.context import MoodindexError


def register(group: click.Group) -> None:
    group.add_command(plugins_group)


@click.group("plugins")
def plugins_group() -> None:
    """The darktable and digiKam plugins, installed to run this moodindex."""


@plugins_group.command("install")
@click.argument("host", type=click.Choice(["darktable", "digikam"]))
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path),
              help="darktable's configuration folder [default: ~/.config/darktable]; for a flatpak darktable, "
                   "~/.var/app/org.darktable.Darktable/config/darktable.")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the digiKam script [default: moodindex's data folder/plugins/digikam].")
@click.option("--executable", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The moodindex program the plugin runs [default: this one].")
def plugins_install(host: str, config_dir: Path | None, dest: Path | None, executable: Path | None) -> None:
    """Install a plugin where its host application looks, running this moodindex by its absolute path."""
    from indexer import plugin_install as pi

    if (host == "darktable" and dest) or (host == "digikam" and config_dir):
        raise MoodindexError("--config-dir is for darktable, --dest for digikam", exit_code=2)
    try:
        if host == "darktable":
            done = pi.install_darktable(config_dir, executable)
        else:
            done = pi.install_digikam(dest, executable)
    except pi.PluginInstallError as exc:
        raise MoodindexError(str(exc)) from exc
    for path in done.files:
        click.echo(f"wrote {path}")
    for n, step in enumerate(done.steps, start=1):
        click.echo(f"  {n}. {step}")
