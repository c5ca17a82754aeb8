"""encounters (remote visits) and one-time join links

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 14:08:51.483726
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('encounters',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('practitioner_id', sa.String(length=36), nullable=True),
    sa.Column('room_id', sa.String(length=36), nullable=False),
    sa.Column('booking_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.Enum('planned', 'waiting', 'in_progress', 'finished', 'cancelled', name='encounterstatus', native_enum=False, length=16), nullable=False),
    sa.Column('walk_in', sa.Boolean(), nullable=False),
    sa.Column('scheduled_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('admitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_encounters_patient_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['practitioner_id'], ['users.id'], name=op.f('fk_encounters_practitioner_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_encounters_room_id_rooms'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_encounters_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_encounters'))
    )
    with op.batch_alter_table('encounters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_encounters_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_encounters_room_id'), ['room_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_encounters_scheduled_start'), ['scheduled_start'], unique=False)
        batch_op.create_index(batch_op.f('ix_encounters_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('join_links',
    sa.Column('encounter_id', sa.String(length=36), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounters.id'], name=op.f('fk_join_links_encounter_id_encounters'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_join_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_join_links_token_hash'))
    )
    with op.batch_alter_table('join_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_join_links_encounter_id'), ['encounter_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('join_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_join_links_encounter_id'))

    op.drop_table('join_links')
    with op.batch_alter_table('encounters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_encounters_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_encounters_scheduled_start'))
        batch_op.drop_index(batch_op.f('ix_encounters_room_id'))
        batch_op.drop_index(batch_op.f('ix_encounters_patient_id'))

    op.drop_table('encounters')
