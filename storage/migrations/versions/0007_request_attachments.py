"""request attachments

Revision ID: 0007_request_attachments
Revises: 0006_encryption_at_rest
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_request_attachments"
down_revision = "0006_encryption_at_rest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("author", sa.String(length=8), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("source_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("source_message_id", sa.Integer(), nullable=False),
        sa.Column("copy_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("copy_message_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("request_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_attachments_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("request_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_attachments_request_id"))
    op.drop_table("request_attachments")
