"""photos newest first, undated last, then by path: the order of a query without emotion words

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-30

PostgreSQL sorts NULL highest, so `taken_at DESC NULLS LAST` cannot walk the (status, taken_at)
index backwards: at a million photos "every photo with faces, newest first" sorted the whole
table (benchmarks/query_scale.py).  This index is in that order on PostgreSQL; SQLite, whose
DESC already puts NULL last, gets the same columns, which also spares it the sort by path.
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    nulls_last = " NULLS LAST" if op.get_bind().dialect.name == "postgresql" else ""
    op.create_index('ix_photos_status_newest', 'photos', ['status', sa.text(f'taken_at DESC{nulls_last}'), 'path'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_photos_status_newest', table_name='photos')
