"""visit messages: chat between the patient and the clinic

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 14:44:29.730435
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('visit_messages',
    sa.Column('encounter_id', sa.String(length=36), nullable=False),
    sa.Column('sender_id', sa.String(length=36), nullable=False),
    sa.Column('sender_name', sa.String(length=200), nullable=False),
    sa.Column('from_clinic', sa.Boolean(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounters.id'], name=op.f('fk_visit_messages_encounter_id_encounters'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_messages'))
    )
    with op.batch_alter_table('visit_messages', schema=None) as batch_op:
        batch_op.create_index('ix_visit_messages_order', ['encounter_id', 'sent_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('visit_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_visit_messages_order')

    op.drop_table('visit_messages')
