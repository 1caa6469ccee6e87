"""scan sweeps: destination_state.customers_swept_at

Change detection looks back a few seconds on every scan and five minutes only on a sweep (at most once a
minute); this is the watermark of the last sweep.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 07:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('destination_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customers_swept_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('destination_state', schema=None) as batch_op:
        batch_op.drop_column('customers_swept_at')
