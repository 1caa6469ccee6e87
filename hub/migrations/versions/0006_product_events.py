"""product events: stock on products, product_event (stock and price changes), wishlist_item

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 14:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stock', sa.Numeric(18, 4), nullable=True))
        batch_op.add_column(sa.Column('in_stock', sa.Boolean(), nullable=True))

    op.create_table('product_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('old_value', sa.Numeric(18, 4), nullable=True),
    sa.Column('new_value', sa.Numeric(18, 4), nullable=True),
    sa.Column('was_available', sa.Boolean(), nullable=True),
    sa.Column('available', sa.Boolean(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('product_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_event_sku'), ['sku'], unique=False)

    op.create_table('wishlist_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('external_id', sa.String(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('sku', sa.String(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'external_id', name='uq_wishlist_item_source_external')
    )
    with op.batch_alter_table('wishlist_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wishlist_item_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_wishlist_item_sku'), ['sku'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('wishlist_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wishlist_item_sku'))
        batch_op.drop_index(batch_op.f('ix_wishlist_item_customer_id'))

    op.drop_table('wishlist_item')
    with op.batch_alter_table('product_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_event_sku'))

    op.drop_table('product_event')
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_column('in_stock')
        batch_op.drop_column('stock')
