"""evidence_chain: a hash chain over the consent ledger and the audit log

Revision ID: 0019_evidence_chain
Revises: 0018_external_requests
Create Date: 2026-12-08

Every consent event and audit-log row gets a place in one chain (storage.chain). The content
hashes are keyed by a key derived from the pseudonym secret, which migrations do not have:
rows already there are chained in order at the first start (storage.chain.backfill).
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_evidence_chain"
down_revision = "0018_external_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_chain",
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("content_hmac", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("mark", sa.String(length=16), nullable=True),
        sa.Column("mark_mac", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_evidence_chain")),
        sa.UniqueConstraint("source", "row_id", name=op.f("uq_evidence_chain_source")),
    )


def downgrade() -> None:
    op.drop_table("evidence_chain")
