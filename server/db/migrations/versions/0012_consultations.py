"""consultations (hội chẩn): requests, questions, participants

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 15:49:52.037485
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consultations',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('consulted_tenant_id', sa.String(length=36), nullable=False),
    sa.Column('department', sa.String(length=200), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('encounter_id', sa.String(length=36), nullable=True),
    sa.Column('room_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.Enum('requested', 'accepted', 'declined', 'scheduled', 'in_session', 'concluded', 'signed', name='consultationstatus', native_enum=False, length=16), nullable=False),
    sa.Column('urgency', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('history', sa.Text(), nullable=False),
    sa.Column('findings', sa.Text(), nullable=False),
    sa.Column('decline_reason', sa.Text(), nullable=True),
    sa.Column('scheduled_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('conclusion', sa.Text(), nullable=True),
    sa.Column('diagnosis_icd10', sa.String(length=10), nullable=True),
    sa.Column('diagnosis_text', sa.String(length=300), nullable=True),
    sa.Column('management', sa.Text(), nullable=True),
    sa.Column('minutes_document_id', sa.String(length=36), nullable=True),
    sa.Column('requested_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=36), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('concluded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['consulted_tenant_id'], ['tenants.id'], name=op.f('fk_consultations_consulted_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounters.id'], name=op.f('fk_consultations_encounter_id_encounters'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_consultations_patient_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_consultations_room_id_rooms'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_consultations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consultations'))
    )
    with op.batch_alter_table('consultations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consultations_consulted_tenant_id'), ['consulted_tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consultations_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_consultations_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consultations_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('consultation_participants',
    sa.Column('consultation_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('role', sa.Enum('chair', 'secretary', 'member', 'requester', name='consultationrole', native_enum=False, length=16), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultations.id'], name=op.f('fk_consultation_participants_consultation_id_consultations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_consultation_participants_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_consultation_participants_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consultation_participants')),
    sa.UniqueConstraint('consultation_id', 'user_id', name=op.f('uq_consultation_participants_consultation_id_user_id'))
    )
    with op.batch_alter_table('consultation_participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consultation_participants_consultation_id'), ['consultation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consultation_participants_user_id'), ['user_id'], unique=False)

    op.create_table('consultation_questions',
    sa.Column('consultation_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('conclusion', sa.Text(), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultations.id'], name=op.f('fk_consultation_questions_consultation_id_consultations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consultation_questions')),
    sa.UniqueConstraint('consultation_id', 'position', name=op.f('uq_consultation_questions_consultation_id_position'))
    )
    with op.batch_alter_table('consultation_questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consultation_questions_consultation_id'), ['consultation_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('consultation_questions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consultation_questions_consultation_id'))

    op.drop_table('consultation_questions')
    with op.batch_alter_table('consultation_participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consultation_participants_user_id'))
        batch_op.drop_index(batch_op.f('ix_consultation_participants_consultation_id'))

    op.drop_table('consultation_participants')
    with op.batch_alter_table('consultations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consultations_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_consultations_patient_id'))
        batch_op.drop_index(batch_op.f('ix_consultations_created_at'))
        batch_op.drop_index(batch_op.f('ix_consultations_consulted_tenant_id'))

    op.drop_table('consultations')
