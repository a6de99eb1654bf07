"""corrections read from photo managers' tags (one face, or the whole photo); photos remember their sidecars

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_emotion', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('photo_level', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('source', sa.String(length=8), nullable=False, server_default='cli'))
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sidecars', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.drop_column('sidecars')
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.drop_column('source')
        batch_op.drop_column('photo_level')
        batch_op.drop_column('not_emotion')
