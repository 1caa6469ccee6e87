"""deletions: products marked deleted, and the deletions of each sync run

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 12:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('records_deleted', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('deletions_ignored', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.drop_column('deletions_ignored')
        batch_op.drop_column('records_deleted')

    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
