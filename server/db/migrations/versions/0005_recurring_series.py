"""recurring series (RRULE) and occurrence changes (cancelled or moved sessions)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 13:45:43.230814
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('recurring_series',
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('rrule', sa.String(length=500), nullable=False),
    sa.Column('first_start_local', sa.DateTime(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['resource_id'], ['bookable_resources.id'], name=op.f('fk_recurring_series_resource_id_bookable_resources'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_recurring_series_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recurring_series'))
    )
    with op.batch_alter_table('recurring_series', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recurring_series_resource_id'), ['resource_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recurring_series_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('occurrence_changes',
    sa.Column('series_id', sa.String(length=36), nullable=False),
    sa.Column('original_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled', sa.Boolean(), nullable=False),
    sa.Column('new_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('new_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['series_id'], ['recurring_series.id'], name=op.f('fk_occurrence_changes_series_id_recurring_series'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_occurrence_changes'))
    )
    with op.batch_alter_table('occurrence_changes', schema=None) as batch_op:
        batch_op.create_index('uq_occurrence_change', ['series_id', 'original_start'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('occurrence_changes', schema=None) as batch_op:
        batch_op.drop_index('uq_occurrence_change')

    op.drop_table('occurrence_changes')
    with op.batch_alter_table('recurring_series', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recurring_series_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_recurring_series_resource_id'))

    op.drop_table('recurring_series')
