"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "bot_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "fsm_states",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=255), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("fsm_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fsm_states_chat_id"), ["chat_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_fsm_states_user_id"), ["user_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("first_name", sa.String(length=128), nullable=True),
        sa.Column("last_name", sa.String(length=128), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("age_group", sa.String(length=16), nullable=True),
        sa.Column("age_answered_at", sa.DateTime(), nullable=True),
        sa.Column("notice_version", sa.String(length=64), nullable=True),
        sa.Column("notice_shown_at", sa.DateTime(), nullable=True),
        sa.Column("blocked_bot", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "guardian_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("minor_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("used_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["minor_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("guardian_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guardian_links_minor_id"), ["minor_id"], unique=False)

    op.create_table(
        "guardian_confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("minor_id", sa.BigInteger(), nullable=False),
        sa.Column("guardian_id", sa.BigInteger(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["link_id"], ["guardian_links.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["minor_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("guardian_confirmations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_guardian_confirmations_guardian_id"), ["guardian_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_guardian_confirmations_minor_id"), ["minor_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("guardian_confirmations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guardian_confirmations_minor_id"))
        batch_op.drop_index(batch_op.f("ix_guardian_confirmations_guardian_id"))

    op.drop_table("guardian_confirmations")
    with op.batch_alter_table("guardian_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guardian_links_minor_id"))

    op.drop_table("guardian_links")
    op.drop_table("users")
    with op.batch_alter_table("fsm_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fsm_states_user_id"))
        batch_op.drop_index(batch_op.f("ix_fsm_states_chat_id"))

    op.drop_table("fsm_states")
    op.drop_table("bot_state")
