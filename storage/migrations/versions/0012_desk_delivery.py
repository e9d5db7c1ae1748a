"""desk delivery: outbox claims and repeats, request numbers never reused

Revision ID: 0012_desk_delivery
Revises: 0011_request_message_kind
Create Date: 2026-11-30
"""

import json

import sqlalchemy as sa
from alembic import op

from storage import dialect

revision = "0012_desk_delivery"
down_revision = "0011_request_message_kind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chat_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("repeated", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("confirm_message_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("lane", sa.String(40), nullable=False, server_default="staff")
        )
    # Lanes as storage.repositories.outbox_lane draws them: one user's chat, one card, one
    # message to redact, the rest of the admin group.
    op.execute(
        "UPDATE outbox SET lane = CASE "
        "WHEN kind IN ('to_user', 'copy_user') THEN 'chat:' || CAST(user_id AS VARCHAR(20)) "
        "WHEN kind IN ('card', 'card_edit', 'to_staff', 'copy_staff') "
        "THEN 'card:' || CAST(request_id AS VARCHAR(20)) "
        "WHEN kind = 'redact' THEN 'message:' || CAST(message_id AS VARCHAR(20)) "
        "ELSE 'staff' END"
    )
    # Items a crash interrupted used to be given up as `uncertain`; they are now sent again,
    # marked as a possible repeat (at least once).
    op.execute("UPDATE outbox SET status = 'pending', repeated = true WHERE status = 'uncertain'")
    undelivered = sa.Column("undelivered", sa.Integer(), nullable=False, server_default="0")
    # Request numbers are never handed out twice (SQLite rebuilds the table for that).
    dialect.add_columns_never_reusing_ids(op, "requests", [undelivered])
    # Numbers of requests erased before this migration stay taken, too.
    bind = op.get_bind()
    details = bind.execute(sa.text("SELECT detail FROM erasure_records WHERE kind = 'request'"))
    numbers = (int(json.loads(detail).get("number") or 0) for (detail,) in details)
    dialect.keep_ids_above(bind, "requests", max(numbers, default=0))


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("undelivered")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("lane")
        batch_op.drop_column("confirm_message_id")
        batch_op.drop_column("repeated")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("chat_id")
