"""clinics: facility profiles (telemedicine eligibility), effective-dated parents, practitioners, patients

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 14:01:23.719076
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('facility_parents',
    sa.Column('child_id', sa.String(length=36), nullable=False),
    sa.Column('parent_id', sa.String(length=36), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['tenants.id'], name=op.f('fk_facility_parents_child_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['tenants.id'], name=op.f('fk_facility_parents_parent_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_facility_parents'))
    )
    with op.batch_alter_table('facility_parents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_facility_parents_child_id'), ['child_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_facility_parents_parent_id'), ['parent_id'], unique=False)

    op.create_table('facility_profiles',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('level', sa.Enum('provincial_hospital', 'regional_hospital', 'commune_station', 'clinic', 'other', name='facilitylevel', native_enum=False, length=24), nullable=False),
    sa.Column('facility_code', sa.String(length=5), nullable=True),
    sa.Column('province_code', sa.String(length=3), nullable=True),
    sa.Column('telemedicine_enabled', sa.Boolean(), nullable=False),
    sa.Column('eligibility_reference', sa.String(length=200), nullable=False),
    sa.Column('eligibility_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_facility_profiles_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_facility_profiles'))
    )
    op.create_table('patient_profiles',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('sex', sa.Enum('male', 'female', 'other', name='sex', native_enum=False, length=8), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('cccd', sa.String(length=12), nullable=True),
    sa.Column('bhyt', sa.String(length=15), nullable=True),
    sa.Column('guardian_name', sa.String(length=200), nullable=True),
    sa.Column('guardian_phone', sa.String(length=20), nullable=True),
    sa.Column('guardian_relationship', sa.String(length=50), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_patient_profiles_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_patient_profiles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_profiles')),
    sa.UniqueConstraint('user_id', 'tenant_id', name=op.f('uq_patient_profiles_user_id_tenant_id'))
    )
    with op.batch_alter_table('patient_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_profiles_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_patient_profiles_user_id'), ['user_id'], unique=False)
        batch_op.create_index('uq_patient_cccd', ['tenant_id', 'cccd'], unique=True, sqlite_where=sa.text('cccd IS NOT NULL'), postgresql_where=sa.text('cccd IS NOT NULL'))

    op.create_table('practitioner_profiles',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('licence_number', sa.String(length=40), nullable=False),
    sa.Column('specialty', sa.String(length=100), nullable=False),
    sa.Column('scope_of_practice', sa.Text(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_practitioner_profiles_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_practitioner_profiles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_practitioner_profiles')),
    sa.UniqueConstraint('user_id', 'tenant_id', name=op.f('uq_practitioner_profiles_user_id_tenant_id'))
    )
    with op.batch_alter_table('practitioner_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_practitioner_profiles_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_practitioner_profiles_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('practitioner_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_practitioner_profiles_user_id'))
        batch_op.drop_index(batch_op.f('ix_practitioner_profiles_tenant_id'))

    op.drop_table('practitioner_profiles')
    with op.batch_alter_table('patient_profiles', schema=None) as batch_op:
        batch_op.drop_index('uq_patient_cccd', sqlite_where=sa.text('cccd IS NOT NULL'), postgresql_where=sa.text('cccd IS NOT NULL'))
        batch_op.drop_index(batch_op.f('ix_patient_profiles_user_id'))
        batch_op.drop_index(batch_op.f('ix_patient_profiles_tenant_id'))

    op.drop_table('patient_profiles')
    op.drop_table('facility_profiles')
    with op.batch_alter_table('facility_parents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_facility_parents_parent_id'))
        batch_op.drop_index(batch_op.f('ix_facility_parents_child_id'))

    op.drop_table('facility_parents')
