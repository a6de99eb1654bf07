"""Query latency at 1,000,000 photos on SQLite and on PostgreSQL, with the plans that explain it.

    python benchmarks/query_scale.py [--photos 1000000] [--faces 2500000] [--runs 5]
                                     [--pg postgresql://...] [--only sqlite|postgresql] [--plans]
                                     [--cache DIR] [--rebuild] [--baseline] [--query TEXT ...]

Builds a synthetic index once per size and seed with the real schema (open_db: every migration
and index) and caches it: the SQLite file under $TMPDIR/moodindex-query-scale/, the PostgreSQL
rows in a schema of their own (qs_<photos>_<faces>_<seed>) on the server --pg (default:
$MOODINDEX_TEST_PG_URL, as started by tests/servers.sh).  Rows go in by bulk: executemany in one
transaction on SQLite, COPY on PostgreSQL, followed by ANALYZE there (what autovacuum does on its
own after a bulk load).  SQLite is measured as users have it, without ANALYZE (--analyze runs it).

The distributions are query_bench.py's, at scale: years 2004..2026 weighted towards recent ones,
events of ~40 photos, 1 % undated and 8 % dated by file time, 2 % errors and 3 % deleted, faces
per photo skewed to 0-2 with a tail of groups, each face's seven probabilities drawn around a
dominant class (happy and neutral most common).  The queries are query_bench.py's interactive ones
and SIDE_QUERIES (20 results, faces loaded, through `indexer.query.search`); each prints its median
of --runs runs, and with --plans the plan of each SELECT it ran (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN
ANALYZE, of the statement exactly as run; a best-first face stream is EXPLAINed whole, though
search stops reading it after 20 photos).  Target: every median under 100 ms.

A cached index is reused (an older one is migrated on open, which times the migration's bulk
work too); --rebuild builds it again.  --baseline times each query a second time, in turn, the
way it ran before migration 0008 (see `without_0008`), and prints the ratio; --query limits the
run to some of the queries.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
from sqlalchemy import text as sql_text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from query_bench import CLASS_WEIGHTS, QUERIES, TODAY, SqlRecorder  # noqa: E402

from indexer.db.session import open_db, session_scope  # noqa: E402
from indexer.query import parse, search  # noqa: E402
from indexer.vision.crop import CLASSES  # noqa: E402

PHOTO_COLUMNS = ("id", "path", "root", "size", "mtime_ns", "content_hash", "taken_at", "date_source",
                 "utc_offset_min", "camera", "width", "height", "orientation", "status", "error", "face_count",
                 "model_version", "detector", "indexed_at")
FACE_COLUMNS = ("id", "photo_id", "idx", "x", "y", "w", "h", "confidence", *CLASSES, "emotion", "score",
                "corrected")
CHUNK = 50_000
PLACES = ["Trips", "Family", "Birthdays", "Work", "Holidays", "Misc"]
INDEXED_AT = "2026-11-20 12:00:00.000000"
# beside query_bench.py's: a rare emotion over a wide range and a common one over a short range,
# the two ends a face stream has to serve (it starts from the emotion's faces or from the photos)
SIDE_QUERIES = [("disgusted in 2019", {}), ("happy in March 2019", {})]


class Synthetic:
    """The whole synthetic library as numpy columns; rows are produced chunk by chunk."""

    def __init__(self, n_photos: int, n_faces: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.n_photos, self.n_faces = n_photos, n_faces
        years = np.arange(2004, 2027)
        year_w = np.linspace(1, 6, len(years))
        n_events = max(1, n_photos // 40)
        ev_year = rng.choice(years, size=n_events, p=year_w / year_w.sum())
        ev_day = rng.integers(0, 365, size=n_events)
        self.event = np.sort(rng.integers(0, n_events, size=n_photos))
        start = (ev_year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + ev_day
        seconds = (9 * 3600 + rng.exponential(3 * 3600, size=n_photos)).astype("timedelta64[s]")
        taken = start[self.event].astype("datetime64[us]") + seconds
        self.taken = np.char.replace(np.datetime_as_string(taken, unit="us"), "T", " ")
        self.year = ev_year[self.event]
        self.undated = rng.random(n_photos) < 0.01
        self.file_dated = rng.random(n_photos) < 0.08
        self.status = rng.choice(np.array(["ok", "error", "deleted"]), size=n_photos, p=[0.95, 0.02, 0.03])
        counts = rng.choice(np.arange(13), size=n_photos,
                            p=np.array([30, 25, 15, 9, 6, 4, 3, 2, 2, 1.5, 1, 1, 0.5]) / 100)
        counts = np.floor(counts * (n_faces / counts.sum()) + rng.random(n_photos)).astype(np.int64)
        diff = int(n_faces - counts.sum())
        pool = np.flatnonzero(counts > 0) if diff < 0 else np.arange(n_photos)
        np.add.at(counts, rng.choice(pool, size=abs(diff)), -1 if diff < 0 else 1)
        self.counts = np.clip(counts, 0, None)
        self.n_faces = int(self.counts.sum())
        self.face_photo = np.repeat(np.arange(1, n_photos + 1), self.counts)
        first = np.repeat(np.cumsum(self.counts) - self.counts, self.counts)
        self.face_idx = np.arange(self.n_faces) - first
        dominant = rng.choice(len(CLASSES), size=self.n_faces, p=CLASS_WEIGHTS / CLASS_WEIGHTS.sum())
        alpha = np.full((self.n_faces, len(CLASSES)), 0.6)
        alpha[np.arange(self.n_faces), dominant] += rng.uniform(1.0, 8.0, size=self.n_faces)
        probs = rng.gamma(alpha)
        self.probs = probs / probs.sum(axis=1, keepdims=True)
        self.top = self.probs.argmax(axis=1)
        self.sizes = rng.integers(40, 900, size=self.n_faces)
        self.xs = rng.integers(0, 3000, size=self.n_faces)
        self.ys = rng.integers(0, 2000, size=self.n_faces)

    def photo_rows(self) -> Iterator[list[tuple]]:
        for lo in range(0, self.n_photos, CHUNK):
            rows = []
            for i in range(lo, min(lo + CHUNK, self.n_photos)):
                e = int(self.event[i])
                ok = self.status[i] == "ok"
                undated = bool(self.undated[i])
                year = "undated" if undated else int(self.year[i])
                rows.append((
                    i + 1, f"/home/user/Pictures/{PLACES[e % len(PLACES)]}/{year}/event{e:05d}/IMG_{i:07d}.jpg",
                    "/home/user/Pictures", 2_000_000 + i, i, f"{i:064x}",
                    None if undated else str(self.taken[i]),
                    None if undated else ("file" if self.file_dated[i] else "exif"), None, "Synthetic",
                    4000, 3000, 1, str(self.status[i]), None if ok else "synthetic",
                    int(self.counts[i]) if ok else 0, "bench", "yunet", INDEXED_AT))
            yield rows

    def face_rows(self) -> Iterator[list[tuple]]:
        classes = np.array(CLASSES)
        for lo in range(0, self.n_faces, CHUNK):
            hi = min(lo + CHUNK, self.n_faces)
            probs = self.probs[lo:hi]
            top = self.top[lo:hi]
            cols = [range(lo + 1, hi + 1), self.face_photo[lo:hi].tolist(), self.face_idx[lo:hi].tolist(),
                    self.xs[lo:hi].tolist(), self.ys[lo:hi].tolist(), self.sizes[lo:hi].tolist(),
                    self.sizes[lo:hi].tolist(), [0.9] * (hi - lo), *probs.T.tolist(), classes[top].tolist(),
                    probs[np.arange(hi - lo), top].tolist(), [False] * (hi - lo)]
            yield list(zip(*cols, strict=True))


def build_sqlite(path: Path, data: Synthetic) -> None:
    partial = path.with_name(path.name + ".partial")
    for p in (partial, partial.with_name(partial.name + "-wal"), partial.with_name(partial.name + "-shm")):
        p.unlink(missing_ok=True)
    open_db(partial).dispose()  # the real schema
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for table, columns, chunks in (("photos", PHOTO_COLUMNS, data.photo_rows()),
                                   ("faces", FACE_COLUMNS, data.face_rows())):
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        for rows in chunks:
            conn.executemany(sql, rows)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    partial.rename(path)


def pg_schema_url(server_url: str, schema: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def build_postgresql(server_url: str, schema: str, data: Synthetic) -> str:
    """COPY the rows into a fresh schema (dropped and made again when incomplete); returns its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    url = pg_schema_url(server_url, schema)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    open_db(url).dispose()  # the real schema, by the migrations
    with psycopg.connect(plain, options=f"-csearch_path={schema}") as conn:
        for table, columns, chunks in (("photos", PHOTO_COLUMNS, data.photo_rows()),
                                       ("faces", FACE_COLUMNS, data.face_rows())):
            with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for rows in chunks:
                    for row in rows:
                        copy.write_row(row)
        for table in ("photos", "faces"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return url


def pg_photos(server_url: str, schema: str) -> int | None:
    """Photos in the cached schema, or None when there is none (or an unfinished one)."""
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass(%s)", (f'"{schema}".faces',)).fetchone()[0] is None:
            return None
        if not conn.execute(f'SELECT EXISTS (SELECT 1 FROM "{schema}".faces)').fetchone()[0]:
            return None
        return conn.execute(f'SELECT count(*) FROM "{schema}".photos').fetchone()[0]


def counts(engine) -> tuple[int, int]:  # noqa: ANN001
    with engine.connect() as conn:
        return (conn.exec_driver_sql("SELECT count(*) FROM photos").scalar(),
                conn.exec_driver_sql("SELECT count(*) FROM faces").scalar())


def explain(engine, statement: str, params: object) -> list[str]:  # noqa: ANN001
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF, SUMMARY OFF) " + statement, params).all()
            return [r[0] for r in rows]
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
        return [r[-1] for r in rows]


@contextmanager
def without_0008(session) -> Iterator[None]:  # noqa: ANN001
    """The same search as before the trigram index and the photo-first streams (the same-run
    baseline of --baseline): no path narrowed on SQLite, no bitmap scan (the only way to a GIN
    index) on PostgreSQL, every face stream walking the emotion's index, in parallel where
    PostgreSQL plans it so."""
    from indexer.db import path_index
    from indexer.query import engine as query_engine

    saved = path_index.NARROW_MAX, query_engine.FROM_PHOTOS_MAX, query_engine._serial_on_postgresql
    path_index.NARROW_MAX, query_engine.FROM_PHOTOS_MAX = -1, 0
    query_engine._serial_on_postgresql = lambda session, active: nullcontext()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sql_text("SET LOCAL enable_bitmapscan = off"))
    try:
        yield
    finally:
        path_index.NARROW_MAX, query_engine.FROM_PHOTOS_MAX, query_engine._serial_on_postgresql = saved


def timed(engine, q, kwargs: dict, runs: int, baseline: bool = False) -> dict[bool, tuple[list[float], int]]:  # noqa: ANN001
    """{False: (ms of each run, results)} and with `baseline` the same for True (before 0008),
    the two ways taking turns (each first in every other run), so neither has the warmer cache."""
    out: dict[bool, tuple[list[float], int]] = {False: ([], 0)} | ({True: ([], 0)} if baseline else {})
    for i in range(runs):
        for before in ((False, True) if i % 2 == 0 else (True, False)) if baseline else (False,):
            with session_scope(engine) as session, (without_0008(session) if before else nullcontext()):
                t0 = time.perf_counter()
                n = len(search(session, q, **kwargs))
                out[before][0].append((time.perf_counter() - t0) * 1000)
                out[before] = (out[before][0], n)
    return out


def measure(name: str, engine, runs: int, plans: bool, only: list[str] | None = None,  # noqa: ANN001
            baseline: bool = False) -> float:
    n_p, n_f = counts(engine)
    print(f"\n== {name}: {n_p:,} photos, {n_f:,} faces")
    recorder = SqlRecorder(engine)
    print(f"{'query':36} {'options':18} {'results':>7} {'median ms':>9} {'max ms':>7}"
          + (f" {'before ms':>9} {'ratio':>6}" if baseline else ""))
    worst = 0.0
    for text, opts in [*QUERIES, *SIDE_QUERIES]:
        if opts.get("limit", 20) is None:
            continue  # every match of the whole library: a batch job (tagging), not an interactive query
        if only and text not in only:
            continue
        q = parse(text, TODAY)
        kwargs = {"limit": 20, **opts}
        got = timed(engine, q, kwargs, runs, baseline)
        times, n = got[False]
        med = statistics.median(times)
        worst = max(worst, med)
        shown = ", ".join(f"{k}={v}" for k, v in opts.items())
        line = f"{text or '(empty)':36} {shown:18} {n:7d} {med:9.1f} {max(times):7.1f}"
        if baseline:  # the same query as before migration 0008, in turn with the new way
            before, n_before = got[True]
            assert n_before == n, (text, n_before, n)
            line += f" {statistics.median(before):9.1f} {statistics.median(before) / med:6.1f}"
        print(line, flush=True)
        if plans:
            recorder.arm()
            with session_scope(engine) as session:
                search(session, q, **kwargs)
            recorder.armed = False
            for k, (statement, params) in enumerate(recorder.seen[:5], start=1):
                print(f"    sql {k}: {' '.join(statement.split())[:120]}")
                for line in explain(engine, statement, params):
                    print(f"      {line}")
    print(f"{name}: slowest median {worst:.1f} ms (target < 100 ms)")
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=1_000_000)
    ap.add_argument("--faces", type=int, default=2_500_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pg", default=os.environ.get("MOODINDEX_TEST_PG_URL"),
                    help="PostgreSQL server URL [default: $MOODINDEX_TEST_PG_URL]")
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "moodindex-query-scale")
    ap.add_argument("--rebuild", action="store_true", help="build the index again even when cached")
    ap.add_argument("--analyze", action="store_true", help="run ANALYZE on the SQLite index first")
    ap.add_argument("--plans", action="store_true")
    ap.add_argument("--baseline", action="store_true",
                    help="time each query the way it ran before migration 0008 too (same run), with the ratio")
    ap.add_argument("--query", action="append", metavar="TEXT",
                    help="time only this query of query_bench.py (repeatable; '' is the empty one)")
    args = ap.parse_args()
    tag = f"{args.photos}_{args.faces}_{args.seed}"
    data: Synthetic | None = None
    worst = {}

    if args.only != "postgresql":
        args.cache.mkdir(parents=True, exist_ok=True)
        path = args.cache / f"sqlite_{tag}.db"
        if args.rebuild or not path.exists():
            t0 = time.perf_counter()
            data = data or Synthetic(args.photos, args.faces, args.seed)
            build_sqlite(path, data)
            print(f"built {path} in {time.perf_counter() - t0:.0f} s")
        engine = open_db(path)
        if args.analyze:
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        worst["sqlite"] = measure(f"SQLite {sqlite3.sqlite_version} (ANALYZE: {args.analyze})", engine,
                                  args.runs, args.plans, args.query, args.baseline)
        engine.dispose()

    if args.only != "sqlite":
        if not args.pg:
            print("no PostgreSQL server: pass --pg URL or start one with tests/servers.sh", file=sys.stderr)
            return 2
        schema = f"qs_{tag}"
        url = pg_schema_url(args.pg, schema)
        if args.rebuild or pg_photos(args.pg, schema) != args.photos:
            t0 = time.perf_counter()
            data = data or Synthetic(args.photos, args.faces, args.seed)
            url = build_postgresql(args.pg, schema, data)
            print(f"built schema {schema} by COPY in {time.perf_counter() - t0:.0f} s")
        engine = open_db(url)
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        worst["postgresql"] = measure(f"PostgreSQL {version}", engine, args.runs, args.plans, args.query,
                                      args.baseline)
        engine.dispose()

    print("\n" + ", ".join(f"{k}: slowest median {v:.1f} ms" for k, v in worst.items()))
    return 0 if all(v < 100 for v in worst.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
