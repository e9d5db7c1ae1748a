"""requests.refusal_ground: the pack's ground a request was refused on

Revision ID: 0015_desk_rules
Revises: 0014_breach_notices
Create Date: 2026-12-07

Refusal grounds are pack data (`[[refusal_grounds]]`, each with its article); the ground's id is
stored with the refusal. Requests refused as manifestly unfounded or excessive before grounds
were pack data (their message kind is `refusal_unfounded`) get the ground `unfounded`, the id
that ground keeps. A clarification beyond the agent's limit is recorded as a request message of
kind `clarify_beyond` (the DPO's reason): no schema change for it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_desk_rules"
down_revision = "0014_breach_notices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refusal_ground", sa.String(length=24), nullable=True))
    op.execute(
        "UPDATE requests SET refusal_ground = 'unfounded' WHERE id IN "
        "(SELECT request_id FROM request_messages WHERE kind = 'refusal_unfounded')"
    )


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("refusal_ground")
