"""the campaign queue: a campaign's next pending deliveries, in order

Revision ID: 0010_deliveries_queue
Revises: 0009_erasure_indexes
Create Date: 2026-12-01

Deliveries are claimed in batches, oldest first, among those still `pending` of one campaign.
Without this index picking the next batch of a million-recipient campaign sorted the
campaign's rows on every claim. Plain CREATE INDEX: the same on SQLite and PostgreSQL.
"""

from alembic import op

revision = "0010_deliveries_queue"
down_revision = "0009_erasure_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_queue", "deliveries", ["campaign_id", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_queue", table_name="deliveries")
