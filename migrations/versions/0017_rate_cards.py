"""rate_cards: every saved version of the prices (PostgreSQL refuses UPDATE on it); the default card as version 1

Revision ID: 0017_rate_cards
Revises: 0016_serviceability
Create Date: 2026-12-09 09:00:00

Version 1 is stored here, so the version a booking keeps names the prices it was priced at from the first
booking on. The prices are written out below, not read from the code: they must stay what version 1 was.
"""
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = '0017_rate_cards'
down_revision = '0016_serviceability'
branch_labels = None
depends_on = None

NO_UPDATE_FUNCTION = """
CREATE FUNCTION rate_cards_no_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rate_cards versions are never edited: save a new version'
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def _slab(first_price, per_half_kg):
    return {'first_kg': '0.5', 'first_price': first_price, 'per_half_kg': per_half_kg}


# app.domain.pricing.DEFAULT_RATE_CARD as it was when this migration was written (tests/test_rates.py checks).
VERSION_1 = {
    'version': 1, 'currency': 'INR', 'tax_rate': Decimal('0.18'), 'volumetric_divisor': 5000,
    'cod_min': Decimal('40.00'), 'cod_percent': Decimal('2'),
    'slabs': {
        'local': {'standard': _slab('40.00', '20.00'), 'express': _slab('60.00', '30.00')},
        'state': {'standard': _slab('55.00', '30.00'), 'express': _slab('85.00', '45.00')},
        'national': {'standard': _slab('75.00', '45.00'), 'express': _slab('120.00', '70.00')},
    },
}


def upgrade():
    rate_cards = op.create_table(
        'rate_cards',
        sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('tax_rate', sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column('volumetric_divisor', sa.Integer(), nullable=False),
        sa.Column('cod_min', sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column('cod_percent', sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column('slabs', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('version'),
    )
    postgresql = op.get_bind().dialect.name == 'postgresql'
    now = datetime.now(UTC)
    op.bulk_insert(rate_cards, [{
        **VERSION_1,
        # SQLite keeps no offset: the models' UTC column stores naive UTC there.
        'created_at': now if postgresql else now.replace(tzinfo=None), 'created_by': 'system',
    }])
    if postgresql:
        op.execute(NO_UPDATE_FUNCTION)
        op.execute("CREATE TRIGGER rate_cards_no_update BEFORE UPDATE ON rate_cards "
                   "FOR EACH ROW EXECUTE FUNCTION rate_cards_no_update()")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS rate_cards_no_update ON rate_cards")
        op.execute("DROP FUNCTION IF EXISTS rate_cards_no_update()")
    op.drop_table('rate_cards')
