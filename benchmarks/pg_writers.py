"""Concurrent writers on one PostgreSQL index: 4 `moodindex index` processes on disjoint folders at
once, against one process indexing the same folders, in the same run.

    python benchmarks/pg_writers.py [--pg postgresql://...] [--writers 4] [--per-folder 24] [--rounds 1]

Makes --writers folders of --per-folder real JPEGs (2-3 MP, 1-3 labelled faces from
../shared/data/facial_expressions_dev pasted on a photo-like background, EXIF dates), then per
round: one `moodindex index F1 F2 ... -j 1` into a fresh schema (the baseline), and --writers
`moodindex index Fi -j 1` processes started together into another fresh schema (so they also
race to migrate it).  Each timing is the wall time of real processes, start-up and model load
included.  Reported: photos/s of each, the ratio, errors (non-zero exits, retry or internal
errors in stderr, photos stored with status 'error'), duplicates (a path or a content hash
twice, a face index twice on a photo) and whether both indexes hold the same photos and faces.
The server: --pg, default $MOODINDEX_TEST_PG_URL (tests/servers.sh start).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.photo_factory import compose, dev_faces, write_photo  # noqa: E402

SHARED = ROOT.parent / "shared"
TROUBLE = ("could not serialize", "deadlock", "duplicate key", "UniqueViolation", "internal error", "Traceback")


def build_folders(top: Path, writers: int, per_folder: int, seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    faces = dev_faces(SHARED / "data" / "facial_expressions_dev", None, 600)
    folders = []
    for w in range(writers):
        folder = top / f"camera{w + 1}"
        for i in range(per_folder):
            k = rng.randint(1, 3)
            img, _ = compose(rng.sample(faces, k), size=rng.choice([(2000, 1500), (1800, 1200)]),
                             face_px=rng.randint(220, 400), seed=w * 1000 + i)
            write_photo(folder / f"IMG_{i:04d}.jpg", img, taken=datetime(2021, 1 + w, 1 + i % 28, 12))
        folders.append(folder)
    return folders


def fresh_schema(server_url: str) -> tuple[str, str]:
    """A new, empty schema on the server; (its name, a URL whose search_path is it)."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"w_{uuid.uuid4().hex[:12]}"
    plain = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    url = make_url(server_url).update_query_dict({"options": f"-csearch_path={name}"})
    return name, url.render_as_string(hide_password=False)


def drop_schema(server_url: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def run_writers(url: str, jobs: list[list[Path]], detector: str) -> tuple[float, list[tuple[int, str]]]:
    """Start one `moodindex index` per job at once; wall seconds until the last ends, (code, stderr)s."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "indexer", "--db", url, "index", *map(str, folders),
                               "-j", "1", "--detector", detector], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for folders in jobs]
    results = []
    for p in procs:
        err = p.communicate()[1]
        results.append((p.returncode, err))
    return time.perf_counter() - t0, results


def check(url: str) -> dict:
    """What the index holds, and every way it could be wrong."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    q = {
        "photos": "SELECT count(*) FROM photos",
        "faces": "SELECT count(*) FROM faces",
        "status_error": "SELECT count(*) FROM photos WHERE status <> 'ok'",
        "dup_paths": "SELECT count(*) FROM (SELECT path FROM photos GROUP BY path HAVING count(*) > 1) d",
        "dup_hashes": "SELECT count(*) FROM (SELECT content_hash FROM photos WHERE status = 'ok' "
                      "GROUP BY content_hash HAVING count(*) > 1) d",
        "dup_faces": "SELECT count(*) FROM (SELECT photo_id, idx FROM faces GROUP BY photo_id, idx "
                     "HAVING count(*) > 1) d",
        "face_count_mismatch": "SELECT count(*) FROM photos p WHERE p.face_count <> "
                               "(SELECT count(*) FROM faces f WHERE f.photo_id = p.id)",
    }
    with engine.connect() as conn:
        out = {k: int(conn.exec_driver_sql(sql).scalar()) for k, sql in q.items()}
        out["content"] = sorted(conn.exec_driver_sql(
            "SELECT p.path, p.face_count, string_agg(f.emotion, ',' ORDER BY f.idx) FROM photos p "
            "LEFT JOIN faces f ON f.photo_id = p.id GROUP BY p.path, p.face_count").all())
    engine.dispose()
    return out


def troubles(results: list[tuple[int, str]]) -> int:
    return sum(1 for code, err in results if code != 0 or any(word in err for word in TROUBLE))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default=os.environ.get("MOODINDEX_TEST_PG_URL"),
                    help="PostgreSQL server URL [default: $MOODINDEX_TEST_PG_URL]")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--per-folder", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--detector", default="haar")
    args = ap.parse_args()
    if not args.pg:
        print("no PostgreSQL server: pass --pg URL or start one with tests/servers.sh", file=sys.stderr)
        return 2
    n = args.writers * args.per_folder
    bad = 0
    ratios = []
    with tempfile.TemporaryDirectory(prefix="moodindex-pgw-") as tmp:
        folders = build_folders(Path(tmp), args.writers, args.per_folder)
        for r in range(args.rounds):
            schemas = []
            try:
                one_schema, one_url = fresh_schema(args.pg)
                schemas.append(one_schema)
                one_s, one_res = run_writers(one_url, [folders], args.detector)
                many_schema, many_url = fresh_schema(args.pg)
                schemas.append(many_schema)
                many_s, many_res = run_writers(many_url, [[f] for f in folders], args.detector)
                one, many = check(one_url), check(many_url)
            finally:
                for name in schemas:
                    drop_schema(args.pg, name)
            ratio = (n / many_s) / (n / one_s)
            ratios.append(ratio)
            for label, secs, res, got in (("1 process ", one_s, one_res, one),
                                          (f"{args.writers} processes", many_s, many_res, many)):
                errors = troubles(res) + got["status_error"]
                dups = got["dup_paths"] + got["dup_hashes"] + got["dup_faces"] + got["face_count_mismatch"]
                bad += errors + dups + (got["photos"] != n)
                print(f"round {r + 1}: {label}: {n} photos in {secs:.1f} s = {n / secs:.2f} photos/s; "
                      f"rows {got['photos']} photos, {got['faces']} faces; errors {errors}; duplicates {dups}")
                for code, err in res:
                    if code != 0 or any(word in err for word in TROUBLE):
                        print(f"    exit {code}: {err.strip()[-500:]}")
            same = one["content"] == many["content"]
            bad += not same
            print(f"round {r + 1}: {args.writers} writers / 1 writer: {ratio:.2f}x photos/s; "
                  f"same photos and faces in both indexes: {same}", flush=True)
    print(f"median speed-up of {args.writers} concurrent writers: {statistics.median(ratios):.2f}x "
          f"({os.cpu_count()} CPUs); problems: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
