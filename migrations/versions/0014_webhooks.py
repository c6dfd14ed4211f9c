"""webhook subscriptions and the log of delivery attempts

Revision ID: 0014_webhooks
Revises: 0013_shipment_language
Create Date: 2026-12-01 11:20:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0014_webhooks'
down_revision = '0013_shipment_language'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'webhook_subscriptions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=True),
        sa.Column('on_created', sa.Boolean(), nullable=False),
        sa.Column('on_status_changed', sa.Boolean(), nullable=False),
        sa.Column('on_delivered', sa.Boolean(), nullable=False),
        sa.Column('secret_sealed', sa.String(length=255), nullable=False),
        sa.Column('previous_secret_sealed', sa.String(length=255), nullable=True),
        sa.Column('previous_secret_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('disabled_reason', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhook_subscriptions_owner_id', 'webhook_subscriptions', ['owner_id'])
    op.create_table(
        'webhook_attempts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subscription_id', sa.Integer(), nullable=False),
        sa.Column('notification_id', sa.Integer(), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.Column('response_body', sa.Text(), nullable=True),
        sa.Column('error', sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(['subscription_id'], ['webhook_subscriptions.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhook_attempts_notification_id', 'webhook_attempts', ['notification_id'])
    op.create_index('ix_webhook_attempts_subscription_at', 'webhook_attempts', ['subscription_id', 'attempted_at'])


def downgrade():
    op.drop_index('ix_webhook_attempts_subscription_at', table_name='webhook_attempts')
    op.drop_index('ix_webhook_attempts_notification_id', table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
    op.drop_index('ix_webhook_subscriptions_owner_id', table_name='webhook_subscriptions')
    op.drop_table('webhook_subscriptions')
