"""What libjpeg, libpng and exifread say about a photo is kept with it in the index: `show` and `errors`
list it (apart from the failures), `index` prints it only with -v, after the progress bar, naming the
file.  Real damaged files made here; run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from indexer.cli import index_cmds
from tests.photo_factory import background, jpeg_with_junk_before_eoi, png_with_bad_srgb, write_photo

JPEG_SAYS = re.compile(r"Corrupt JPEG data: \d+ extraneous bytes before marker 0xd9")  # libjpeg's own words
PNG_SAYS = "libpng warning: sRGB: invalid"


@pytest.fixture()
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    pixels = background(320, 240, seed=1)
    jpeg_with_junk_before_eoi(lib / "junk-eoi.jpg", pixels)
    png_with_bad_srgb(lib / "bad-srgb.png", pixels)
    write_photo(lib / "fine.jpg", pixels)
    (lib / "empty.jpg").write_bytes(b"")  # a failure, not a warning
    return lib


def _index(run_cli, *args):  # noqa: ANN001, ANN202
    result = run_cli(*args, "--detector", "haar", "--workers", "1")
    assert result.exit_code == 0, result.output
    return result


def test_warnings_are_stored_and_shown_by_show_and_errors(run_cli, library: Path) -> None:
    result = _index(run_cli, "index", library)
    assert "Corrupt JPEG" not in result.stderr and "libpng" not in result.stderr  # quiet without -v
    assert "2 with warnings" in result.stdout
    assert "see `moodindex errors`" in result.stderr

    shown = json.loads(run_cli("show", library / "junk-eoi.jpg", "--format", "json").stdout)
    assert shown["status"] == "ok" and any(JPEG_SAYS.fullmatch(w) for w in shown["warnings"]), shown["warnings"]
    assert re.search(r"^  warning   " + JPEG_SAYS.pattern + "$", run_cli("show", library / "junk-eoi.jpg").stdout, re.M)
    assert json.loads(run_cli("show", library / "fine.jpg", "--format", "json").stdout)["warnings"] == []
    assert "  warning " not in run_cli("show", library / "fine.jpg").stdout

    text = run_cli("errors").stdout.splitlines()
    header = text.index("indexed with warnings (2 photos):")
    failures, warned = text[:header], text[header + 1:]
    assert any(line.startswith(f"{library / 'empty.jpg'}: ") for line in failures)
    assert not any("junk-eoi" in line or "bad-srgb" in line for line in failures)
    assert any(re.fullmatch(re.escape(f"{library / 'junk-eoi.jpg'}: warning: ") + JPEG_SAYS.pattern, line)
               for line in warned)
    assert any(line.startswith(f"{library / 'bad-srgb.png'}: warning: {PNG_SAYS}") for line in warned)
    assert not any("fine.jpg" in line for line in text)

    items = json.loads(run_cli("errors", "--format", "json").stdout)
    kinds = {Path(it["path"]).name: it["kind"] for it in items}
    assert kinds == {"empty.jpg": "failed", "junk-eoi.jpg": "warnings", "bad-srgb.png": "warnings"}
    status = json.loads(run_cli("status", "--format", "json").stdout)
    assert status["warned"] == 2 and status["errors"] == 1


def test_reindexing_a_repaired_file_clears_its_warnings(run_cli, library: Path) -> None:
    _index(run_cli, "index", library)
    write_photo(library / "junk-eoi.jpg", np.full((240, 320, 3), 90, np.uint8))  # replaced by a sound file
    _index(run_cli, "index", library)
    shown = json.loads(run_cli("show", library / "junk-eoi.jpg", "--format", "json").stdout)
    assert shown["warnings"] == []
    assert "indexed with warnings (1 photo):" in run_cli("errors").stdout


def test_verbose_prints_each_warning_with_its_file_after_the_progress_bar(run_cli, library: Path,
                                                                          monkeypatch) -> None:  # noqa: ANN001
    class RecordingBar:
        """Stands in for tqdm and marks on stderr when it draws, so the order of lines can be checked."""

        def update(self, _progress) -> None:  # noqa: ANN001
            index_cmds.click.echo("[bar update]", err=True)

        def close(self) -> None:
            index_cmds.click.echo("[bar closed]", err=True)

    monkeypatch.setattr(index_cmds, "_progress_bar", lambda app: RecordingBar())
    result = _index(run_cli, "-v", "index", library)
    lines = result.stderr.splitlines()
    closed = lines.index("[bar closed]")
    warned = [i for i, line in enumerate(lines) if ": warning: " in line]
    assert any(re.fullmatch(re.escape(f"{library / 'junk-eoi.jpg'}: warning: ") + JPEG_SAYS.pattern, lines[i])
               for i in warned), lines
    assert any(lines[i].startswith(f"{library / 'bad-srgb.png'}: warning: {PNG_SAYS}") for i in warned), lines
    assert warned and min(warned) > closed  # nothing between two bar updates
    assert "[bar update]" in lines[:closed]


def test_the_watcher_logs_warnings_at_info_level_naming_the_file(engine, library: Path, caplog) -> None:  # noqa: ANN001
    """watch has no progress bar: its log is the terminal, and -v shows INFO."""
    import logging

    from indexer.config import Settings
    from indexer.scan import Indexer

    caplog.set_level(logging.INFO, logger="indexer.scan")
    indexer = Indexer(engine, Settings(db=Path("unused"), workers=1, detector="haar"))
    try:
        summary = indexer.scan([library])
    finally:
        indexer.close()
    assert summary.warned == 2
    logged = [r.getMessage() for r in caplog.records if ": warning: " in r.getMessage()]
    assert any(m.startswith(f"{library / 'junk-eoi.jpg'}: warning: Corrupt JPEG data") for m in logged), logged
    assert all(r.levelno == logging.INFO for r in caplog.records if ": warning: " in r.getMessage())
