"""breaches: what the notice to the authority must carry and the people's own term

Revision ID: 0014_breach_notices
Revises: 0013_outbox_queue
Create Date: 2026-12-07

GDPR art. 33(3)-(4): the approximate number of people and of records concerned, and the
reasons for a notice after the deadline; art. 34(1): the affected people are told without undue
delay, a term of its own tracked on the breach's screen. Nullable: breaches recorded before
this revision have none of these.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_breach_notices"
down_revision = "0013_outbox_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("breaches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("people", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("records", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("delay", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("users_due_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("breaches", schema=None) as batch_op:
        batch_op.drop_column("users_due_at")
        batch_op.drop_column("delay")
        batch_op.drop_column("records")
        batch_op.drop_column("people")
