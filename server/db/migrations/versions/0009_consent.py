"""consent records: explicit, per purpose, withdrawable, with their evidence

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 14:29:52.035106
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consent_records',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('purpose', sa.Enum('remote_examination', 'recording', 'data_sharing_consultation', name='consentpurpose', native_enum=False, length=32), nullable=False),
    sa.Column('text_version', sa.Integer(), nullable=False),
    sa.Column('text_language', sa.String(length=8), nullable=False),
    sa.Column('text_sha256', sa.String(length=64), nullable=False),
    sa.Column('accepted', sa.Boolean(), nullable=False),
    sa.Column('decided_by', sa.String(length=36), nullable=False),
    sa.Column('decided_as', sa.String(length=16), nullable=False),
    sa.Column('guardian_name', sa.String(length=200), nullable=True),
    sa.Column('child_assent', sa.Boolean(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_by', sa.String(length=36), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_consent_records_patient_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_consent_records_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_records'))
    )
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_records_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_records_tenant_id'), ['tenant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_records_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_consent_records_patient_id'))

    op.drop_table('consent_records')
