"""desk delivery: outbox claims and repeats, request numbers never reused

Revision ID: 0012_desk_delivery
Revises: 0011_request_message_kind
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

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
    if op.get_bind().dialect.name != "sqlite":
        op.add_column("requests", undelivered)  # a sequence never hands out a number twice
        return
    # SQLite: rebuilt with AUTOINCREMENT so a number is never handed out twice (the table copy
    # runs with foreign keys off, see storage.migrate).
    with op.batch_alter_table(
        "requests", schema=None, recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.add_column(undelivered)
    # Numbers of requests erased before this migration stay taken, too.
    op.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'requests', "
        "COALESCE(MAX(CAST(json_extract(detail, '$.number') AS INTEGER)), 0) "
        "FROM erasure_records WHERE kind = 'request' "
        "AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'requests')"
    )
    op.execute(
        "UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(CAST("
        "json_extract(detail, '$.number') AS INTEGER)), 0) FROM erasure_records "
        "WHERE kind = 'request')) WHERE name = 'requests'"
    )


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("undelivered")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("lane")
        batch_op.drop_column("confirm_message_id")
        batch_op.drop_column("repeated")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("chat_id")
