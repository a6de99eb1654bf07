"""The README's two commands on a Debian 12 / Ubuntu 24.04 system Python, which refuses `pip install`
(PEP 668): the install command goes through pipx or a virtual environment, and `.ci/run` makes its
own environment (or uses the active one) and never runs pip with the system Python."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _two_commands() -> list[str]:
    """The indented command lines of the README's "Two commands" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ") and line.strip()]


def test_readme_install_commands_never_pip_install_into_the_system_python() -> None:
    commands = _two_commands()
    assert commands[0].startswith("pipx install . && moodindex index ")
    assert any(c.startswith("python3 -m venv .venv && .venv/bin/pip install . && ") for c in commands)
    assert "bash .ci/run" in commands
    for command in commands:
        for step in command.split("&&"):
            words = step.split()
            if "pip" in words or "pip3" in words or words[:3] == ["python3", "-m", "pip"]:
                pytest.fail(f"system pip in the README's commands: {step.strip()!r}")


STUB = textwrap.dedent("""\
    #!/bin/sh
    # stands in for a Python: logs how it was called; `-m venv DIR` makes DIR/bin/python, another stub
    printf '%s\\n' "$0 $*" >> "$STUB_LOG"
    if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
        mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
    fi
    """)


def _run_ci(tmp_path: Path, env_extra: dict[str, str]) -> list[str]:
    """Run the real .ci/run in a copy of the repository's .ci folder with stub Pythons (apt skipped);
    returns the calls, one per line, with the temp folder cut off."""
    repo = tmp_path / "repo"
    if not (repo / ".ci").exists():
        (repo / ".ci").mkdir(parents=True)
        shutil.copy(ROOT / ".ci" / "run", repo / ".ci" / "run")
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "python3").write_text(STUB)
        (tmp_path / "bin" / "python3").chmod(0o755)
    log = tmp_path / "calls"
    log.unlink(missing_ok=True)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "STUB_LOG": str(log), "HOME": str(tmp_path),
           "CI_SKIP_APT": "1", **env_extra}
    done = subprocess.run(["/bin/bash", str(repo / ".ci" / "run")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return [line.replace(str(repo) + "/", "").replace(str(tmp_path) + "/", "")
            for line in log.read_text().splitlines()]


def test_ci_run_makes_its_own_venv_and_never_uses_the_system_pip(tmp_path: Path) -> None:
    calls = _run_ci(tmp_path, {})
    assert calls[0] == "bin/python3 -m venv .venv"
    rest = calls[1:]
    assert all(c.startswith(".venv/bin/python ") for c in rest), calls
    assert ".venv/bin/python -m pip install -q -e .[test]" in rest
    assert rest[-2:] == [".venv/bin/python -m ruff check .", ".venv/bin/python -m pytest -q"]
    assert not [c for c in calls if re.match(r"bin/python3 -m pip", c)]
    # a second run reuses the environment
    assert not [c for c in _run_ci(tmp_path, {}) if "-m venv" in c]


def test_ci_run_uses_the_active_venv(tmp_path: Path) -> None:
    mine = tmp_path / "my venv"
    (mine / "bin").mkdir(parents=True)
    (mine / "bin" / "python").write_text(STUB)
    (mine / "bin" / "python").chmod(0o755)
    calls = _run_ci(tmp_path, {"VIRTUAL_ENV": str(mine)})
    assert calls and all(c.startswith("my venv/bin/python -m ") for c in calls), calls
    assert not (tmp_path / "repo" / ".venv").exists()


def test_every_python_package_is_in_the_wheel() -> None:
    """setup.cfg lists the packages by name (for the bundled-data mappings): a new folder left out
    installs fine in editable mode and breaks `pip install .`."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "indexer").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)

