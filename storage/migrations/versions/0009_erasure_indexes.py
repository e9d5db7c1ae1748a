"""indexes for the columns an erasure looks people up by

Revision ID: 0009_erasure_indexes
Revises: 0008_breaches_last_seen
Create Date: 2026-11-30

An erasure replaces the person's ID where they acted for others (consent_events.actor_id,
guardian_links.used_by, audit_log.subject), and deleting their consent events checks the
states that point at them (consent_states.event_id), their guardian links the confirmations
made through them (guardian_confirmations.link_id). Without these indexes each of those is a
full table scan: seconds at a million users, with the write lock held.
"""

from alembic import op

revision = "0009_erasure_indexes"
down_revision = "0008_breaches_last_seen"
branch_labels = None
depends_on = None

INDEXES = (
    ("consent_events", "actor_id"),
    ("consent_states", "event_id"),
    ("audit_log", "subject"),
    ("guardian_links", "used_by"),
    ("guardian_confirmations", "link_id"),
)


def upgrade() -> None:
    for table, column in INDEXES:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in reversed(INDEXES):
        op.drop_index(f"ix_{table}_{column}", table_name=table)
