"""The rules that have one home each: path containment, what a watcher event may index, how a
scan's counts are added up and written out."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.paths import is_under, normalise_path
from indexer.summary import ScanSummary, changes_text
from indexer.walk import excluded, may_be_indexed


@pytest.mark.parametrize(("path", "folder", "strict", "expected"), [
    ("/a/b", "/a/b", False, True),
    ("/a/b", "/a/b", True, False),
    ("/a/b/c.jpg", "/a/b", True, True),
    ("/a/b/c.jpg", "/a/b/", False, True),
    ("/a/bc/d.jpg", "/a/b", False, False),   # whole components only
    ("/a", "/a/b", False, False),
    ("/", "/", False, True),
    ("/x.jpg", "/", True, True),
])
def test_is_under(path: str, folder: str, strict: bool, expected: bool) -> None:
    assert is_under(path, folder, strict=strict) is expected


def test_normalise_path_expands_and_keeps_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert normalise_path(tmp_path / "link" / ".." / "link" / "x.jpg") == str(tmp_path / "link" / "x.jpg")


def test_may_be_indexed_and_excluded_agree_on_hidden_and_outside(tmp_path: Path) -> None:
    root = str(tmp_path)
    (tmp_path / ".moodignore").write_text("exports/\n")
    assert may_be_indexed(f"{root}/a/b.jpg", root) and not excluded(f"{root}/a/b.jpg", root)
    for hidden in (f"{root}/.cache/b.jpg", f"{root}/a/.b.jpg", "/elsewhere/b.jpg"):
        assert not may_be_indexed(hidden, root) and excluded(hidden, root)
    assert not may_be_indexed(f"{root}/a/b.txt", root)
    # the ignore file costs reads, so only `excluded` looks at it
    assert may_be_indexed(f"{root}/exports/b.jpg", root) and excluded(f"{root}/exports/b.jpg", root)


def test_summary_lines() -> None:
    s = ScanSummary(new=3, changed=2, metadata_only=1, unchanged=10, deleted=1, faces=7, seconds=2.0)
    assert s.line() == ("3 new, 2 changed (1 metadata only), 10 unchanged, 0 moved, 1 deleted, 0 failed, "
                        "0 skipped; 7 faces; 2.5 photos/s in 2.0 s")
    assert s.brief(1.25, moved=2, removed=1) == "3 new, 2 changed, 2 moved, 2 removed; 7 faces in 1.2s"
    assert ScanSummary(unchanged=5).brief(1.0) == ""
    assert ScanSummary(moved=1).brief(0.5) == "1 moved in 0.5s"  # no faces part without new/changed photos
    warned = ScanSummary(new=2, failed=1, warned=1, faces=1, seconds=1.0)
    assert warned.line() == ("2 new, 0 changed, 0 unchanged, 0 moved, 0 deleted, 1 failed, 0 skipped; "
                             "1 with warnings; 1 faces; 2.0 photos/s in 1.0 s")


def test_summary_merge_adds_every_counter() -> None:
    total = ScanSummary(new=1, faces=2)
    total.merge(ScanSummary(new=1, changed=1, unchanged=4, moved=1, deleted=1, failed=1, skipped=1, faces=3,
                            warned=1))
    assert total.counts() == {"new": 2, "changed": 1, "unchanged": 4, "moved": 1, "deleted": 1, "failed": 1,
                              "skipped": 1, "faces": 5, "warned": 1}


def test_changes_text_reads_stored_run_summaries() -> None:
    stored = {"new": 1, "changed": 0, "moved": 2}  # an older run's JSON may lack counters
    assert changes_text(stored, ("new", "changed", "moved", "deleted")) == "1 new, 0 changed, 2 moved, 0 deleted"
