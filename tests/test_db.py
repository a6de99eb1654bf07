"""The index file: created owner-only, WAL, foreign keys, migrated on open."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import datetime

from sqlalchemy import select, text

from indexer.db.models import Face, Photo
from indexer.db.schema_version import HEAD_REVISION
from indexer.db.session import migrations_dir, open_db, session_scope


def test_db_created_private_wal_and_migrated(db_path):
    engine = open_db(db_path)
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.execute(text("select version_num from alembic_version")).scalar() == HEAD_REVISION
    engine.dispose()
    open_db(db_path).dispose()  # reopening an up-to-date index is a no-op


def test_deleting_a_photo_cascades_to_faces(engine):
    now = datetime(2020, 1, 1)
    with session_scope(engine) as s:
        p = Photo(path="/p/a.jpg", root="/p", size=1, mtime_ns=1, status="ok", indexed_at=now, face_count=1)
        p.faces.append(Face(idx=0, x=1, y=2, w=3, h=4, confidence=0.9, angry=0, disgust=0, fear=0, happy=1,
                            sad=0, surprise=0, neutral=0, emotion="happy", score=1.0))
        s.add(p)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM photos")
    with session_scope(engine) as s:
        assert s.scalars(select(Face)).all() == []


def test_a_row_another_writer_repointed_is_not_buried(engine):
    """Two runs see one move: the first re-points the row to the new path; the second, holding the
    vanished row from its earlier snapshot, must not bury it (that lost the photo's results)."""
    from indexer.db.photos import bury_vanished, repoint_moved

    with session_scope(engine) as s:
        s.add(Photo(path="/r/old.jpg", root="/r", size=1, mtime_ns=1, status="ok", face_count=0,
                    content_hash="h", indexed_at=datetime.now()))
    with session_scope(engine) as s:
        stale = s.execute(select(Photo.id, Photo.path)).all()  # the second run's snapshot
    with session_scope(engine) as s:
        repoint_moved(s, stale[0].id, "/r/moved/old.jpg", "/r", 2)  # the first run's move
    with session_scope(engine) as s:
        assert bury_vanished(s, stale) == 0
    with session_scope(engine) as s:
        row = s.scalars(select(Photo)).one()
        assert (row.path, row.status) == ("/r/moved/old.jpg", "ok")
    with session_scope(engine) as s:  # still where it vanished from: buried as before
        gone = s.execute(select(Photo.id, Photo.path)).all()
        assert bury_vanished(s, gone) == 1


def test_migrations_build_the_schema_the_models_describe(db_path):
    """The Alembic migrations (which PostgreSQL runs too) and the ORM models agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from indexer.db import path_index
    from indexer.db.models import Base

    def modelled(name: str | None, type_: str, parent_names: dict) -> bool:  # noqa: ARG001
        # the trigram index over paths is each engine's own (migration 0008), not a model
        return not (name or "").startswith(path_index.SQLITE_TABLE) and name != path_index.POSTGRES_INDEX

    engine = open_db(db_path)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": modelled}), Base.metadata)
    engine.dispose()
    assert diff == []


def test_head_revision_is_the_newest_migration() -> None:
    """The one place the code names the head (read without Alembic on every open) agrees with Alembic."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    assert ScriptDirectory.from_config(cfg).get_heads() == [HEAD_REVISION]


def test_an_index_at_head_opens_without_importing_alembic(db_path) -> None:
    open_db(db_path).dispose()  # created and migrated: Alembic ran
    code = ("import json, sys; from indexer.db.session import open_db; open_db(sys.argv[1]).dispose(); "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic')))")
    out = subprocess.run([sys.executable, "-c", code, str(db_path)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_an_older_index_is_still_migrated(db_path) -> None:
    """The quick check sees an older revision and lets Alembic upgrade it; 0004 goes down and up again."""
    from alembic import command
    from alembic.config import Config

    open_db(db_path).dispose()
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    engine = open_db(db_path, migrate=False)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    with engine.connect() as conn:
        assert "warnings" not in {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(photos)")}
    engine.dispose()
    engine = open_db(db_path)
    with engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == HEAD_REVISION
        assert "warnings" in {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(photos)")}
    engine.dispose()
