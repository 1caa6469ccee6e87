"""product follow-ups: what buyers of a product or group bought next (the built-in recommender)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('product_followup',
    sa.Column('antecedent_kind', sa.String(), nullable=False),
    sa.Column('antecedent', sa.String(), nullable=False),
    sa.Column('sku', sa.String(), nullable=False),
    sa.Column('support', sa.Integer(), nullable=False),
    sa.Column('buyers', sa.Integer(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('lift', sa.Float(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('antecedent_kind', 'antecedent', 'sku')
    )


def downgrade() -> None:
    op.drop_table('product_followup')
