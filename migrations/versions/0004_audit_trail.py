"""audit_entries: the append-only audit trail (PostgreSQL refuses UPDATE and DELETE on it)

Revision ID: 0004_audit_trail
Revises: 0003_search_index_with_id
Create Date: 2026-12-01 08:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0004_audit_trail'
down_revision = '0003_search_index_with_id'
branch_labels = None
depends_on = None

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_entries is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def upgrade():
    op.create_table(
        'audit_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=48), nullable=False),
        sa.Column('target_type', sa.String(length=32), nullable=True),
        sa.Column('target_id', sa.String(length=64), nullable=True),
        sa.Column('request_id', sa.String(length=64), nullable=True),
        sa.Column('client_address', sa.String(length=64), nullable=True),
        sa.Column('details', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_entries_at_id', 'audit_entries', ['at', 'id'])
    op.create_index('ix_audit_entries_target', 'audit_entries', ['target_type', 'target_id', 'at'])
    op.create_index('ix_audit_entries_actor_at', 'audit_entries', ['actor', 'at'])
    op.create_index('ix_audit_entries_action_at', 'audit_entries', ['action', 'at'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(APPEND_ONLY_FUNCTION)
        op.execute("CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries "
                   "FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries")
        op.execute("DROP FUNCTION IF EXISTS audit_entries_append_only()")
    op.drop_index('ix_audit_entries_action_at', table_name='audit_entries')
    op.drop_index('ix_audit_entries_actor_at', table_name='audit_entries')
    op.drop_index('ix_audit_entries_target', table_name='audit_entries')
    op.drop_index('ix_audit_entries_at_id', table_name='audit_entries')
    op.drop_table('audit_entries')
