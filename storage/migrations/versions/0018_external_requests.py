"""requests.user_id may be empty: a request staff registered that came outside the bot

Revision ID: 0018_external_requests
Revises: 0017_system_jobs
Create Date: 2026-12-08

The policies take requests by e-mail too (the sports policy ch. 7, the hosting policy);
staff register them from the desk app. A person who does not use the bot has no row in
`users`, and a placeholder row would show in every user list (broadcasts, /stats, retention),
so such a request has no user: `user_id` is NULL and its personal fields are sealed under the
operator's key. Requests of bot users are unchanged. SQLite rebuilds the table (foreign keys
off, see storage.migrate), keeping AUTOINCREMENT: numbers are never reused.
"""

import sqlalchemy as sa
from alembic import op

from storage import dialect

revision = "0018_external_requests"
down_revision = "0017_system_jobs"
branch_labels = None
depends_on = None


def _nullable(nullable: bool) -> None:
    bind = op.get_bind()
    floor = 0
    if dialect.is_sqlite(bind):
        # The rebuilt table's counter starts from its rows: the numbers handed out before
        # (erased requests' too) stay taken.
        seq = bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'requests'"))
        floor = int(seq.scalar() or 0)
    with op.batch_alter_table(
        "requests", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.BigInteger(), nullable=nullable)
    dialect.keep_ids_above(bind, "requests", floor)


def upgrade() -> None:
    _nullable(True)


def downgrade() -> None:
    # Requests without a user cannot be kept by the older schema.
    op.execute("DELETE FROM requests WHERE user_id IS NULL")
    _nullable(False)
