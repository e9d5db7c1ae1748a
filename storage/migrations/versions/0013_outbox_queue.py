"""the outbox queue: the oldest pending items and each lane's unfinished ones, by index

Revision ID: 0013_outbox_queue
Revises: 0012_desk_delivery
Create Date: 2026-12-02

The outbox claim takes the oldest pending item that heads its lane (no other item of the lane
in flight or waiting before it). Without these indexes it read every item ever sent, twice per
claim. (status, id) replaces the index on status alone. Plain CREATE/DROP INDEX: the same on
SQLite and PostgreSQL.
"""

from alembic import op

revision = "0013_outbox_queue"
down_revision = "0012_desk_delivery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_queue", "outbox", ["status", "id"])
    op.create_index("ix_outbox_lanes", "outbox", ["lane", "status", "id"])
    op.drop_index("ix_outbox_status", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_status", "outbox", ["status"])
    op.drop_index("ix_outbox_lanes", table_name="outbox")
    op.drop_index("ix_outbox_queue", table_name="outbox")
