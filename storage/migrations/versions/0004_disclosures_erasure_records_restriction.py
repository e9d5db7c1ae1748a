"""disclosures erasure records restriction

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "erasure_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("erasure_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_erasure_records_pseudonym"), ["pseudonym"], unique=False
        )

    op.create_table(
        "disclosures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("data", sa.String(length=500), nullable=False),
        sa.Column("legal_basis", sa.String(length=200), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disclosures_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restricted_until", sa.DateTime(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("restricted_until")

    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disclosures_user_id"))

    op.drop_table("disclosures")
    with op.batch_alter_table("erasure_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_erasure_records_pseudonym"))

    op.drop_table("erasure_records")
