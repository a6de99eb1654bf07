"""What storing paths through `PathText` (indexer/paths.py's escaping) costs at 100,000 photos.

    python benchmarks/path_text_cost.py [--rows 100000] [--runs 5]

Builds a temporary SQLite index of --rows photos with realistic paths, then times, interleaved
so that machine noise hits both alike (median of --runs):
  - reading every photo's path and root (what `moodindex list` does) through the model's
    `PathText` columns, against the same SELECT with the columns read as plain text;
  - inserting the rows through `PathText`, against plain text binds.
The ratio is the figure to quote: both sides run the same SQL on the same file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Text, delete, insert, select, type_coerce  # noqa: E402
from sqlalchemy import column as sql_column  # noqa: E402
from sqlalchemy import table as sql_table  # noqa: E402

from indexer.db.models import Photo  # noqa: E402
from indexer.db.session import open_db  # noqa: E402
from indexer.paths import escape_path  # noqa: E402

NOW = datetime(2026, 11, 30, 12)


def rows(n: int) -> list[dict]:
    return [{"path": f"/home/anna/Pictures/{2010 + i % 15}/Trip {i % 97:02d}/IMG_{i:06d}.jpg",
             "root": "/home/anna/Pictures", "size": 2_000_000 + i, "mtime_ns": i, "content_hash": f"{i:064x}",
             "status": "ok", "face_count": 0, "indexed_at": NOW} for i in range(n)]


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    data = rows(args.rows)
    escaped = [{**r, "path": escape_path(r["path"]), "root": escape_path(r["root"])} for r in data]
    table = Photo.__table__
    plain_cols = {"path": type_coerce(table.c.path, Text), "root": type_coerce(table.c.root, Text)}
    plain_table = sql_table("photos", *[sql_column(c, Text if c in plain_cols else table.c[c].type)
                                        for c in data[0]])  # same columns, paths bound as plain text
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_db(Path(tmp) / "index.db")
        times: dict[str, list[float]] = {k: [] for k in ("read PathText", "read text", "insert PathText",
                                                          "insert text")}

        for _ in range(args.runs):
            with engine.begin() as conn:
                conn.execute(delete(table))
            times["insert PathText"].append(timed(lambda: _insert(engine, table, data)))
            with engine.begin() as conn:
                conn.execute(delete(table))
            times["insert text"].append(timed(lambda: _insert(engine, plain_table, escaped)))
            reads = {"read PathText": select(table.c.path, table.c.root),
                     "read text": select(plain_cols["path"], plain_cols["root"])}
            for stmt in reads.values():  # warm: statement cache, page cache, WAL
                _read(engine, stmt)
            for name in sorted(reads, reverse=_ % 2 == 1):  # alternate which goes first
                times[name].append(timed(partial(_read, engine, reads[name])))
        engine.dispose()
    load_avg = os.getloadavg()
    print(f"{args.rows:,} photos, median of {args.runs}; load average {load_avg[0]:.1f}")
    for op in ("read", "insert"):
        a, b = statistics.median(times[f"{op} PathText"]), statistics.median(times[f"{op} text"])
        print(f"{op:6} PathText {a * 1000:8.1f} ms   plain text {b * 1000:8.1f} ms   ratio {a / b:.2f}"
              f"   (+{(a - b) / args.rows * 1e6:.2f} µs per photo)")
    return 0


def _insert(engine, table, data: list[dict]) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(insert(table), data)


def _read(engine, stmt) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        for _ in conn.execute(stmt):
            pass


if __name__ == "__main__":
    raise SystemExit(main())
