"""people named in photo metadata, and where they are in each photo

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('people',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('photo_people',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('photo_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('face_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('x', sa.Integer(), nullable=False),
    sa.Column('y', sa.Integer(), nullable=False),
    sa.Column('w', sa.Integer(), nullable=False),
    sa.Column('h', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['photo_id'], ['photos.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['face_id'], ['faces.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('photo_id', 'person_id', name='uq_photo_people_photo_person')
    )
    with op.batch_alter_table('photo_people', schema=None) as batch_op:
        batch_op.create_index('ix_photo_people_photo', ['photo_id'], unique=False)
        batch_op.create_index('ix_photo_people_person', ['person_id'], unique=False)
        batch_op.create_index('ix_photo_people_face', ['face_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('photo_people', schema=None) as batch_op:
        batch_op.drop_index('ix_photo_people_face')
        batch_op.drop_index('ix_photo_people_person')
        batch_op.drop_index('ix_photo_people_photo')
    op.drop_table('photo_people')
    op.drop_table('people')
