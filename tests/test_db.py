"""The index file: created owner-only, WAL, foreign keys, migrated on open."""

from __future__ import annotations

import stat
from datetime import datetime

from sqlalchemy import select, text

from indexer.db.models import Face, Photo
from indexer.db.session import open_db, session_scope


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from indexer.db.session import migrations_dir

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_db_created_private_wal_and_migrated(db_path):
    engine = open_db(db_path)
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.execute(text("select version_num from alembic_version")).scalar() == _head()
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


def test_migrations_build_the_schema_the_models_describe(db_path):
    """The Alembic migrations (which PostgreSQL runs too) and the ORM models agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from indexer.db.models import Base

    engine = open_db(db_path)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
