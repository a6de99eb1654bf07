"""the user's corrections, kept apart from model output; faces say whether theirs is corrected

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('x', sa.Integer(), nullable=False),
    sa.Column('y', sa.Integer(), nullable=False),
    sa.Column('w', sa.Integer(), nullable=False),
    sa.Column('h', sa.Integer(), nullable=False),
    sa.Column('emotion', sa.String(length=16), nullable=True),
    sa.Column('not_a_face', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.create_index('ix_corrections_content_hash', ['content_hash'], unique=False)
    with op.batch_alter_table('faces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('corrected', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('faces', schema=None) as batch_op:
        batch_op.drop_column('corrected')
    with op.batch_alter_table('corrections', schema=None) as batch_op:
        batch_op.drop_index('ix_corrections_content_hash')
    op.drop_table('corrections')
