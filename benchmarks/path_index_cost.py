"""What the trigram index over photos.path (migration 0008) costs each photo written.

    python benchmarks/path_index_cost.py [--photos 2000] [--rounds 3] [--sqlite PATH] [--pg URL]

Inserts --photos photo rows (paths like query_scale.py's, ~60 characters), one transaction each as
the indexer stores each result, into an index with the trigram index and into the same index
without it, alternating for --rounds rounds; the rows go again after each round.  Without it means
before migration 0008: on SQLite the three triggers dropped (the FTS5 table is then not written),
on PostgreSQL the GIN index dropped.  Prints microseconds per photo and the ratio of each round.

--sqlite PATH measures an existing index (e.g. query_scale.py's million-photo file: a copy, as it
is written to); by default a fresh one in a temporary folder.  --pg URL (default
$MOODINDEX_TEST_PG_URL) measures a fresh schema on that server; --only picks one database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402

from indexer.db.session import open_db  # noqa: E402

PLACES = ["Trips", "Family", "Birthdays", "Work", "Holidays", "Misc"]
INSERT = text("INSERT INTO photos (path, root, size, mtime_ns, status, face_count, indexed_at) "
              "VALUES (:path, '/home/user/Pictures', 1, 0, 'ok', 0, '2026-11-30 12:00:00')")


def sqlite_triggers(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'photos_path_trigrams_%'")]


def switch(engine: Engine, on: bool, triggers: list[str]) -> None:
    """The trigram index written (on) or not (off), as before migration 0008."""
    from indexer.db import path_index

    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for name in path_index.SQLITE_TRIGGERS:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
            if on:
                for sql in triggers:
                    conn.exec_driver_sql(sql)
        elif on:
            conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {path_index.POSTGRES_INDEX} ON photos "
                                 "USING gin (path gin_trgm_ops)")
        else:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {path_index.POSTGRES_INDEX}")


def one_round(engine: Engine, n: int, tag: str) -> float:
    """Microseconds per photo for `n` inserts, one transaction each; the rows are deleted after."""
    paths = [f"/home/user/Pictures/{PLACES[i % 6]}/2026/bench{tag}{i // 40:05d}/IMG_{i:07d}.jpg" for i in range(n)]
    t0 = time.perf_counter()
    for path in paths:
        with engine.begin() as conn:
            conn.execute(INSERT, {"path": path})
    elapsed = time.perf_counter() - t0
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM photos WHERE path LIKE :p"), {"p": f"%/bench{tag}%"})
    return elapsed / n * 1e6


def measure(name: str, engine: Engine, photos: int, rounds: int) -> None:
    with engine.connect() as conn:
        existing = conn.exec_driver_sql("SELECT count(*) FROM photos").scalar()
    print(f"\n== {name}: {existing:,} photos already in the index; {photos} inserts per round")
    triggers = sqlite_triggers(engine) if engine.dialect.name == "sqlite" else []
    ratios = []
    for r in range(1, rounds + 1):
        switch(engine, False, triggers)
        without = one_round(engine, photos, f"{r}a")
        switch(engine, True, triggers)
        with_index = one_round(engine, photos, f"{r}b")
        ratios.append(with_index / without)
        print(f"round {r}: without {without:7.0f} us/photo   with {with_index:7.0f} us/photo   "
              f"ratio {with_index / without:.2f}   (+{with_index - without:.0f} us)", flush=True)
    print(f"{name}: median ratio {statistics.median(ratios):.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sqlite", type=Path, help="an existing SQLite index to write to (default: a fresh one)")
    ap.add_argument("--pg", default=os.environ.get("MOODINDEX_TEST_PG_URL"))
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    args = ap.parse_args()
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            path = args.sqlite or Path(tmp) / "index.db"
            engine = open_db(path)
            measure(f"SQLite ({path})", engine, args.photos, args.rounds)
            engine.dispose()
    if args.only != "sqlite" and args.pg:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        schema = f"pic_{uuid.uuid4().hex[:12]}"
        admin = create_engine(make_url(args.pg).set(drivername="postgresql+psycopg"))
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            url = make_url(args.pg).update_query_dict({"options": f"-csearch_path={schema},public"})
            engine = open_db(url.render_as_string(hide_password=False))
            measure("PostgreSQL (a fresh schema)", engine, args.photos, args.rounds)
            engine.dispose()
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
