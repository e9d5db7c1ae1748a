"""encryption at rest: data keys per person; personal fields sealed in place

Revision ID: 0006_encryption_at_rest
Revises: 0005_staff_roles_templates
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.engine import Connection

from storage import dialect
from storage.crypto import OPERATOR, PREFIX, KeyRing, MasterKeys

revision = "0006_encryption_at_rest"
down_revision = "0005_staff_roles_templates"
branch_labels = None
depends_on = None

# table: (primary key, owner column or None, personal columns). The owner of request messages
# is their request's user; outbox items without a user belong to their request's user.
PERSONAL = {
    "users": ("id", "id", ("username", "first_name", "last_name", "phone")),
    "requests": ("id", "user_id", ("details", "reason")),
    "request_messages": ("id", None, ("text",)),
    "outbox": ("id", "user_id", ("text",)),
    "disclosures": ("id", "user_id", ("recipient", "data", "legal_basis")),
    "fsm_states": ("key", "user_id", ("data",)),
}
WIDENED = {
    "users": ("username", "first_name", "last_name", "phone"),
    "disclosures": ("recipient", "data", "legal_basis"),
}


def _master() -> MasterKeys:
    master = context.config.attributes.get("master_keys")
    if master is None:
        raise RuntimeError(
            "this migration seals personal data: run it through the bot (python -m bot), "
            "which passes the master key"
        )
    return master  # type: ignore[no-any-return]


def _transform(connection: Connection, change: Callable[[int, str], str | None]) -> None:
    """Rewrite every personal value through `change(owner, value)`."""
    owners_of_requests = dict(connection.execute(sa.text("SELECT id, user_id FROM requests")).all())
    for name, (pk, owner_column, columns) in PERSONAL.items():
        extra = ["request_id"] if name in ("request_messages", "outbox") else []
        wanted = list(dict.fromkeys([pk, *([owner_column] if owner_column else []), *extra]))
        table = sa.table(name, *(sa.column(c) for c in dict.fromkeys([*wanted, *columns])))
        for row in connection.execute(sa.select(table)).mappings().all():
            owner = row[owner_column] if owner_column else None
            if owner is None and row.get("request_id") is not None:
                owner = owners_of_requests[row["request_id"]]
            owner = OPERATOR if owner is None else int(owner)
            values = {
                c: change(owner, row[c]) for c in columns if row[c] is not None and row[c] != ""
            }
            if values:
                connection.execute(sa.update(table).where(table.c[pk] == row[pk]).values(**values))


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("owner_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("wrapped_by", sa.String(length=16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id"),
    )
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_keys_wrapped_by"), ["wrapped_by"], unique=False)
    connection = op.get_bind()
    if dialect.enforces_lengths(connection):
        # Ciphertext is longer than the old limits. (SQLite does not enforce lengths, and
        # rebuilding `users` there would cascade-delete through its foreign keys.)
        for table, columns in WIDENED.items():
            for column in columns:
                op.alter_column(table, column, type_=sa.Text(), existing_nullable=True)
    with op.batch_alter_table("fsm_states", schema=None) as batch_op:
        batch_op.alter_column("data", existing_type=sa.Text(), nullable=True)
    op.execute("UPDATE fsm_states SET data = NULL WHERE data = '{}'")

    has_rows = connection.execute(sa.text("SELECT COUNT(*) FROM users")).scalar() or 0
    has_rows += connection.execute(sa.text("SELECT COUNT(*) FROM fsm_states")).scalar() or 0
    if has_rows:
        ring = KeyRing(_master())
        _transform(connection, lambda owner, value: ring.seal(connection, owner, value).token)
        # The plain text is overwritten (secure_delete), but old pages may linger in the WAL:
        # the bot compacts the files at start when this flag is set (bot.erasure).
        op.execute("DELETE FROM bot_state WHERE key = 'erasure:compact_pending'")
        op.execute("INSERT INTO bot_state (key, value) VALUES ('erasure:compact_pending', '1')")


def downgrade() -> None:
    connection = op.get_bind()
    if connection.execute(sa.text("SELECT COUNT(*) FROM data_keys")).scalar():
        ring = KeyRing(_master())
        _transform(
            connection,
            lambda _owner, value: (
                str(ring.open(connection, value)) if value.startswith(PREFIX) else value
            ),
        )
    op.execute("UPDATE fsm_states SET data = '{}' WHERE data IS NULL")
    with op.batch_alter_table("fsm_states", schema=None) as batch_op:
        batch_op.alter_column("data", existing_type=sa.Text(), nullable=False)
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_keys_wrapped_by"))
    op.drop_table("data_keys")
