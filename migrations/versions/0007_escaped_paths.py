"""paths stored as indexer.paths.escape_path text: a backslash already in a stored path is doubled

Names that are not UTF-8 are now stored with each bad byte as \\xNN, so a real backslash must be
written \\\\ to keep the text reversible.  Only rows holding a backslash change (nearly none).
Downgrade halves them again; a \\xNN row (a name the old version could not store at all) stays
as that text.

Revision ID: 0007
Revises: 0003
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_REWRITE = ("UPDATE photos SET path = replace(path, :old, :new), root = replace(root, :old, :new) "
            "WHERE replace(path, :old, '') <> path OR replace(root, :old, '') <> root")


def upgrade() -> None:
    op.get_bind().execute(sa.text(_REWRITE), {"old": "\\", "new": "\\\\"})


def downgrade() -> None:
    op.get_bind().execute(sa.text(_REWRITE), {"old": "\\\\", "new": "\\"})
