"""breaches register; when each user last interacted (storage limitation)

Revision ID: 0008_breaches_last_seen
Revises: 0007_request_attachments
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_breaches_last_seen"
down_revision = "0007_request_attachments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breaches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("known_at", sa.DateTime(), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("consequences", sa.Text(), nullable=False),
        sa.Column("affected", sa.Text(), nullable=False),
        sa.Column("authority_due_at", sa.DateTime(), nullable=False),
        sa.Column("authority_notified_at", sa.DateTime(), nullable=True),
        sa.Column("authority_notified_by", sa.BigInteger(), nullable=True),
        sa.Column("users_told_at", sa.DateTime(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_users_last_seen_at"), ["last_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_last_seen_at"))
        batch_op.drop_column("last_seen_at")
    op.drop_table("breaches")
