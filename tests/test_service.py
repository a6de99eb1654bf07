"""`moodindex service install/uninstall`: the unit text, its quoting (read back by a reference
parser of systemd.syntax(7), and by `systemd-analyze verify` where it works), XDG paths, the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer.cli import main
from indexer.service import ENABLE_COMMAND, ServiceError, launcher, quote, unit_path, unit_text, user_unit_dir

NASTY = ["/home/ann/My Photos", '/x/"quoted"', "/x/back\\slash", "/x/100%/%h", "/x/$HOME/${USER}", "/x/tab\there",
         "/x/new\nline", "/x/it's", "/x/ünïcødé 写真", "/x/semi;colon", "/x/\x01ctrl", ""]
_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"',
              "'": "'", "s": " "}


def _unvariable(word: str) -> str:
    """`$$` -> `$`; a lone `$` would start a variable reference."""
    out, i = "", 0
    while i < len(word):
        if word[i] == "$":
            assert word[i + 1:i + 2] == "$", f"unescaped variable in {word!r}"
            i += 1
        out += word[i]
        i += 1
    return out


def systemd_split(line: str) -> list[str]:
    """Reference reading of an ExecStart= value per systemd.syntax(7) and systemd.service(5):
    `%%` -> `%` (specifiers, on the whole line), words split on whitespace, "..." and '...'
    quoting, C-style escapes, then `$$` -> `$` in the arguments (the executable gets no
    variable expansion).  Written from the documentation, independently of `quote`."""
    assert "%" not in line.replace("%%", ""), f"unescaped specifier in {line!r}"
    line = line.replace("%%", "%")
    words, i = [], 0
    while i < len(line):
        if line[i].isspace():
            i += 1
            continue
        word, quote_char = "", None
        while i < len(line) and (quote_char or not line[i].isspace()):
            c = line[i]
            if c == "\\":
                nxt = line[i + 1]
                if nxt == "x":
                    word += chr(int(line[i + 2:i + 4], 16))
                    i += 4
                    continue
                word += _C_ESCAPES[nxt]
                i += 2
                continue
            if quote_char and c == quote_char:
                quote_char = None
            elif not quote_char and c in "\"'":
                quote_char = c
            else:
                word += c
            i += 1
        assert quote_char is None, f"unbalanced quote in {line!r}"
        words.append(word if not words else _unvariable(word))
    return words


def exec_start(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
    assert len(lines) == 1
    return systemd_split(lines[0][len("ExecStart="):])


@pytest.mark.parametrize("word", NASTY)
def test_quote_reads_back_exactly(word: str) -> None:
    assert systemd_split("/bin/true " + quote(word)) == ["/bin/true", word]
    assert "\n" not in quote(word)


@pytest.mark.parametrize("exe", ["/opt/My Apps/venv/bin/python", "/x/100% $HOME/python", "/x/写真/python"])
def test_quote_executable_reads_back_exactly(exe: str) -> None:
    assert systemd_split(quote(exe, executable=True)) == [exe]


def test_an_executable_systemd_refuses_is_started_through_env(tmp_path: Path) -> None:
    exe = "/home/o'brien/venv/bin/python"
    with pytest.raises(ServiceError, match="refuses"):
        quote(exe, executable=True)
    argv = exec_start(unit_text([exe, "-m", "indexer"], tmp_path / "c.toml", tmp_path / "i.db"))
    assert argv[:4] == ["/usr/bin/env", exe, "-m", "indexer"]


def test_quote_refuses_paths_a_unit_file_cannot_hold() -> None:
    undecodable = os.fsdecode(b"/x/\xff\xfe")
    with pytest.raises(ServiceError, match="not valid UTF-8"):
        quote(undecodable)


def test_unit_text_runs_this_interpreter_with_the_config_and_index(tmp_path: Path) -> None:
    config, db = tmp_path / "my config" / "config.toml", tmp_path / "100% $data" / "index.db"
    text = unit_text(launcher(), config_file=config, db=db)
    argv = exec_start(text)
    assert argv == [os.path.abspath(sys.executable), "-m", "indexer", "--config", str(config), "--db", str(db),
                    "watch"]
    assert os.path.isabs(argv[0])
    for line in ("Restart=on-failure", "KillMode=mixed", "KillSignal=SIGTERM", "RestartPreventExitStatus=2",
                 "WantedBy=default.target", "Type=simple"):
        assert line in text.splitlines()
    assert text.index("[Unit]") < text.index("[Service]") < text.index("[Install]")


def test_the_launcher_starts_moodindex() -> None:
    r = subprocess.run([*launcher(), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "moodindex" in r.stdout


def test_unit_dir_honours_xdg_config_home(tmp_path: Path) -> None:
    assert user_unit_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "systemd" / "user"
    home = Path(os.path.expanduser("~"))
    assert user_unit_dir({}) == home / ".config" / "systemd" / "user"
    assert user_unit_dir({"XDG_CONFIG_HOME": "relative/ignored"}) == home / ".config" / "systemd" / "user"
    assert unit_path().parent == Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user"


def _systemd_analyze_works(tmp_path: Path) -> bool:
    if shutil.which("systemd-analyze") is None:
        return False
    probe = tmp_path / "probe.service"
    probe.write_text(f"[Service]\nExecStart={shutil.which('true') or '/bin/true'}\n")
    r = subprocess.run(["systemd-analyze", "verify", str(probe)], capture_output=True, text=True, timeout=60)
    return r.returncode == 0


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """systemd itself reads the unit: the executable named in a quoted, nasty path must be found."""
    if not _systemd_analyze_works(tmp_path):
        pytest.skip("systemd-analyze verify does not work here")
    odd = tmp_path / "py thon 100% $HOME ü"
    odd.mkdir()
    exe = odd / "python"
    exe.symlink_to(sys.executable)
    unit = tmp_path / "moodindex-watch.service"
    unit.write_text(unit_text([str(exe), "-m", "indexer"], tmp_path / "c d" / "config.toml",
                              tmp_path / "e%f" / "index.db"), encoding="utf-8")
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr

    quoted = tmp_path / "o'brien \"venv\""  # refused as an executable name: started through env(1)
    quoted.mkdir()
    (quoted / "python").symlink_to(sys.executable)
    via_env = tmp_path / "via-env.service"
    via_env.write_text(unit_text([str(quoted / "python"), "-m", "indexer"], tmp_path / "c", tmp_path / "$d"))
    r = subprocess.run(["systemd-analyze", "verify", str(via_env)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr

    broken = tmp_path / "broken.service"  # the check can fail: a path that is not there
    broken.write_text(unit_text([str(odd / "missing"), "-m", "indexer"], tmp_path / "c", tmp_path / "d"))
    r = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "missing" in r.stderr


def _write_config(text: str) -> Path:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "moodindex" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")
    return config


def test_install_refuses_without_roots(db_path: Path) -> None:
    r = CliRunner().invoke(main, ["--db", str(db_path), "service", "install"])
    assert r.exit_code == 2
    assert "no roots configured" in r.output and "config.toml" in r.output
    assert not unit_path().exists()


def test_install_writes_the_unit_and_uninstall_removes_it(tmp_path: Path, db_path: Path) -> None:
    photos = tmp_path / "Photos 2024"
    photos.mkdir()
    config = _write_config(f'roots = ["{photos}", "{tmp_path / "unplugged"}"]\n')
    runner = CliRunner()
    r = runner.invoke(main, ["--db", str(db_path), "service", "install", "--user"])
    assert r.exit_code == 0, r.output
    path = unit_path()
    assert f"wrote {path}" in r.output
    assert ENABLE_COMMAND in r.output
    assert "unplugged" in r.output.split("not there now")[1]
    text = path.read_text(encoding="utf-8")
    assert exec_start(text)[3:] == ["--config", str(config), "--db", str(db_path), "watch"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left

    again = runner.invoke(main, ["--db", str(db_path), "service", "install"])
    assert again.exit_code == 0 and "unchanged" in again.output

    printed = runner.invoke(main, ["--db", str(db_path), "service", "install", "--print"])
    assert printed.exit_code == 0 and printed.output == text

    wants = path.parent / "default.target.wants"  # what `systemctl --user enable` makes
    wants.mkdir()
    (wants / path.name).symlink_to(path)
    r = runner.invoke(main, ["service", "uninstall"])
    assert r.exit_code == 0, r.output
    assert not path.exists() and not (wants / path.name).is_symlink()
    assert "systemctl --user stop moodindex-watch.service" in r.output
    r = runner.invoke(main, ["service", "uninstall"])
    assert r.exit_code == 0 and "nothing to remove" in r.output


def test_install_reports_an_unwritable_unit_dir(tmp_path: Path, db_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "photos").mkdir()
    _write_config(f'roots = ["{tmp_path / "photos"}"]\n')
    blocker = tmp_path / "cfg"
    blocker.write_text("a file where the config dir should be")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    r = CliRunner().invoke(main, ["--db", str(db_path), "--config", str(tmp_path / "nope.toml"), "service",
                                  "install"])
    assert r.exit_code == 2 and "cannot read config file" in r.output  # explicit --config must exist
    cfg = _write_config_at(tmp_path / "real.toml", f'roots = ["{tmp_path / "photos"}"]\n')
    r = CliRunner().invoke(main, ["--db", str(db_path), "--config", str(cfg), "service", "install"])
    assert r.exit_code == 1 and "cannot write" in r.output and "Traceback" not in r.output


def _write_config_at(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
