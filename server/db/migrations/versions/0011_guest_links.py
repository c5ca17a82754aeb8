"""join links for invited guests (relatives, interpreters, specialists)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 14:45:42.479526
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('join_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guest_user_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('guest_role', sa.String(length=16), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_join_links_guest_user_id_users'), 'users', ['guest_user_id'], ['id'], ondelete='CASCADE')



def downgrade() -> None:
    with op.batch_alter_table('join_links', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_join_links_guest_user_id_users'), type_='foreignkey')
        batch_op.drop_column('guest_role')
        batch_op.drop_column('guest_user_id')

