"""`moodindex query` (and the database layer) must not load OpenCV or a model runtime: the domain's
words live in `indexer.domain`, which imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("cv2", "ai_edge_litert", "tflite_runtime", "onnxruntime", "tensorflow")

PROBE = """
import json, sys
from click.testing import CliRunner
from indexer.cli import main
result = CliRunner().invoke(main, ["--db", sys.argv[1], "query", "sad photos from 2019", "--format", "json"])
assert result.exit_code == 0, result.output
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_query_loads_no_vision_library(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "index.db")], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "sqlalchemy" in loaded  # the probe did reach the database
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_help_loads_neither_the_database_layer_nor_vision() -> None:
    code = ("import sys; from click.testing import CliRunner; from indexer.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.replace("'", '"')))
    assert not loaded & {"sqlalchemy", *HEAVY}, sorted(loaded & {"sqlalchemy", *HEAVY})


def test_query_help_lists_every_registered_filter() -> None:
    from click.testing import CliRunner

    from indexer.cli import main
    from indexer.query.filters import FILTERS

    text = " ".join(CliRunner().invoke(main, ["query", "--help"]).output.split())
    for flt in FILTERS:
        for example in flt.help_examples:
            assert example in text


def test_domain_module_imports_only_the_standard_library() -> None:
    code = "import sys; before = set(sys.modules); import indexer.domain; print(sorted(set(sys.modules) - before))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == ["indexer", "indexer.domain"]


STARTUP_PROBE = """
import json, sys
from click.testing import CliRunner
from indexer.cli import main
from indexer.db.session import open_db
open_db(sys.argv[1]).dispose()  # an existing index, at the head revision
before = set(sys.modules)
for args in (["status"], ["show", "/nowhere.jpg"], ["list"], ["query", "happy"], ["errors"]):
    result = CliRunner().invoke(main, ["--db", sys.argv[1], *args])
    assert result.exit_code in (0, 1), result.output
print(json.dumps(sorted({m.split(".")[0] for m in set(sys.modules) - before})))
"""


def test_commands_on_an_existing_index_load_no_vision_library_and_no_alembic(tmp_path: Path) -> None:
    """status, show, list, query and errors answer fast: no OpenCV, no model runtime, no numpy, and no
    Alembic once the index is at the head revision (benchmarks/startup.py measures the time)."""
    out = subprocess.run([sys.executable, "-c", STARTUP_PROBE, str(tmp_path / "index.db")], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not loaded & {*HEAVY, "numpy", "alembic"}, sorted(loaded & {*HEAVY, "numpy", "alembic"})


INDEX_PROBE = """
import json, sys
from click.testing import CliRunner
from indexer.cli import main
result = CliRunner().invoke(main, ["--db", sys.argv[1], "index", sys.argv[2], "-j", "1", "--format", "json"])
assert result.exit_code == 0, result.output
assert json.loads(result.stdout)["new"] == 2, result.output
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_index_leaves_vision_to_its_workers(tmp_path: Path) -> None:
    """The photos are analysed in worker processes; the process that walks and stores loads neither
    OpenCV, numpy nor a model runtime (~0.5 s of every short run, and the watcher's memory)."""
    from tests.photo_factory import background, write_photo

    for i in range(2):
        write_photo(tmp_path / "lib" / f"p{i}.jpg", background(320, 240, seed=i))
    out = subprocess.run([sys.executable, "-c", INDEX_PROBE, str(tmp_path / "index.db"), str(tmp_path / "lib")],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not loaded & {"numpy", *HEAVY}, sorted(loaded & {"numpy", *HEAVY})
