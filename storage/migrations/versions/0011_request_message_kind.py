"""request_messages.kind widened to 32 characters

Revision ID: 0011_request_message_kind
Revises: 0010_deliveries_queue
Create Date: 2026-11-30

A refusal as manifestly unfounded or excessive is recorded as `refusal_unfounded` (17
characters), which PostgreSQL refused in VARCHAR(16). SQLite ignores the length but the table is
rebuilt there too, so both engines declare the same schema (nothing references request_messages,
so the rebuild cascades nowhere).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_request_message_kind"
down_revision = "0010_deliveries_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_messages", schema=None) as batch_op:
        batch_op.alter_column(
            "kind",
            existing_type=sa.String(length=16),
            type_=sa.String(length=32),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("request_messages", schema=None) as batch_op:
        batch_op.alter_column(
            "kind",
            existing_type=sa.String(length=32),
            type_=sa.String(length=16),
            existing_nullable=False,
        )
