"""A worker process that dies on a photo (the OOM killer, a kill, a decoder crash) is a real process
death here (the worker SIGKILLs itself: indexer.worker.KILL_ON_ENV).  The first death must not mark
a good photo failed for good: the next run retries it once, alone in a fresh worker, and only a
second death records an error that stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.worker import KILL_ON_ENV
from tests.photo_factory import background, write_photo


@pytest.fixture()
def photos(tmp_path: Path, run_cli) -> Path:  # noqa: ANN001
    folder = tmp_path / "photos"
    for i, name in enumerate(("a.jpg", "b.jpg", "crash.jpg", "c.jpg", "d.jpg")):
        write_photo(folder / name, background(320, 240, seed=i))
    config = tmp_path / "cfg.toml"
    config.write_text('detector = "haar"\n')
    return folder


def _index(run_cli, folder: Path, config: Path) -> dict:  # noqa: ANN001
    res = run_cli("--config", config, "index", folder, "-j", "2", "--format", "json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _errors(run_cli) -> dict[str, dict]:  # noqa: ANN001
    return {Path(e["path"]).name: e for e in json.loads(run_cli("errors", "--format", "json").stdout)}


def test_a_worker_death_is_retried_once_in_the_next_run(run_cli, photos: Path, tmp_path: Path,  # noqa: ANN001
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "cfg.toml"
    monkeypatch.setenv(KILL_ON_ENV, "crash.jpg")
    first = _index(run_cli, photos, config)
    assert (first["new"], first["failed"], first["retry_next"]) == (4, 1, 1), first
    err = _errors(run_cli)["crash.jpg"]
    assert err["status"] == "retry" and err["retry"] is True and "worker process died" in err["error"]
    assert "[will be retried]" in run_cli("errors").output

    monkeypatch.delenv(KILL_ON_ENV)  # the death was transient: the retry succeeds
    second = _index(run_cli, photos, config)
    assert (second["changed"], second["unchanged"], second["failed"]) == (1, 4, 0), second
    assert _errors(run_cli) == {}


def test_a_second_death_on_the_retry_is_an_error_for_good(run_cli, photos: Path, tmp_path: Path,  # noqa: ANN001
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "cfg.toml"
    monkeypatch.setenv(KILL_ON_ENV, "crash.jpg")
    assert _index(run_cli, photos, config)["retry_next"] == 1
    # the retry runs alone in a fresh worker, even for a single file (never in the indexing process,
    # which the file would kill): the death is recorded, and the run goes on
    second = _index(run_cli, photos, config)
    assert (second["failed"], second["retry_next"], second["unchanged"]) == (1, 0, 4), second
    err = _errors(run_cli)["crash.jpg"]
    assert err["status"] == "error" and err["retry"] is False and "not retried" in err["error"]
    assert "[will be retried]" not in run_cli("errors").output
    third = _index(run_cli, photos, config)  # an error for good: not tried again while unchanged
    assert (third["failed"], third["unchanged"]) == (0, 5), third
