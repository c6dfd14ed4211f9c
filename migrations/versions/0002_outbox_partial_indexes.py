"""outbox: partial indexes for due and leased rows

Revision ID: 0002_outbox_partial_indexes
Revises: 0001_initial
Create Date: 2026-11-21 21:05:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0002_outbox_partial_indexes'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_notifications_pending_due', 'notifications', ['next_attempt_at', 'id'], unique=False,
                    postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))
    op.create_index('ix_notifications_sending_lease', 'notifications', ['lease_until'], unique=False,
                    postgresql_where=sa.text("state = 'sending'"), sqlite_where=sa.text("state = 'sending'"))


def downgrade():
    op.drop_index('ix_notifications_sending_lease', table_name='notifications')
    op.drop_index('ix_notifications_pending_due', table_name='notifications')
