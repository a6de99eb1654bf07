"""The schema revision this code expects, known without importing Alembic.

Opening the index compares it with the revision stored in the database (`alembic_version`): when
they agree (every open but the first after an upgrade) no Alembic module is imported, which saves
0.1-0.2 s of CPU on each `status`, `query`, `show` or `list`.  Alembic runs only when they
differ.  Keep this equal to the newest revision in migrations/versions/: tests/test_db.py checks it."""

from __future__ import annotations

HEAD_REVISION = "0008"
