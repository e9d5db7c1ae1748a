"""breach_notices: each authority notified of a breach, per law

Revision ID: 0016_breach_authorities
Revises: 0015_desk_rules
Create Date: 2026-12-07

A pack under two laws (the hosting pack: Law 99-Z and the GDPR) has two authorities, each with
its own deadline (99-Z art. 16: 3 working days; GDPR art. 33: 72 hours); each is marked notified
on its own. `breaches.authority_notified_at` stays "every authority notified": a breach marked
before this revision (one mark) counts as notified to every authority; `authority_due_at` is
from now on the earliest deadline of an authority not yet notified.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_breach_authorities"
down_revision = "0015_desk_rules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breach_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("breach_id", sa.Integer(), nullable=False),
        sa.Column("law", sa.String(length=32), nullable=False),
        sa.Column("notified_at", sa.DateTime(), nullable=False),
        sa.Column("notified_by", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["breach_id"], ["breaches.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("breach_id", "law"),
    )


def downgrade() -> None:
    op.drop_table("breach_notices")
