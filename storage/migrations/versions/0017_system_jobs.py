"""system_jobs: requests carried out in the operator's own systems

Revision ID: 0017_system_jobs
Revises: 0016_breach_authorities
Create Date: 2026-12-07

A pack's `[[systems]]` (sql, webhook, manual) are where the person's data lives besides the
bot. Approving an access, erasure, correction or restriction request creates one job per system
in the approval's transaction; a worker runs each. The request waits in the new status
`carrying_out` (a value of `requests.status`, a String(16): no schema change) until every job is
done, or a DPO completes it with the rest explained.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_system_jobs"
down_revision = "0016_breach_authorities"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "system_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("system_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("counts", sa.Text(), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("done_by", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("purge_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "system_id"),
    )
    op.create_index("ix_system_jobs_request_id", "system_jobs", ["request_id"])
    op.create_index("ix_system_jobs_user_id", "system_jobs", ["user_id"])
    op.create_index("ix_system_jobs_purge_at", "system_jobs", ["purge_at"])
    op.create_index("ix_system_jobs_queue", "system_jobs", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("system_jobs")
