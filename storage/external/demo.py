"""The demo databases of the shipped packs' `sql` systems: their schema, in one place, used by
`python -m bot systems demo`, the tests and the benchmark, with a few demo people (or many, for
the benchmark). The packs' `[[systems]]` describe exactly these tables (a test checks it).

- `gdpr_hosting.accounts`: the customer account at my.active.by. `accounts` holds the Telegram
  ID and the phone; `services` and `orders` refer to `accounts.id` and go on erasure;
  `invoices` refer to it too and stay (accounting law), their payer fields pseudonymised; the
  account row stays, emptied, because the invoices refer to it.
- `by_99z_sports.accounts`: the accounts on the sites and apps, bound to the phone number.
  `profiles` (found by the verified phone) and `subscriptions` go; `payments` stay (accounting
  law), cut from the profile and pseudonymised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    insert,
    inspect,
)
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class DemoPerson:
    telegram_id: int
    phone: str | None
    first_name: str
    last_name: str
    email: str


DEMO_PEOPLE = (
    DemoPerson(5550001, "+375291110001", "Anna", "Ivanova", "anna@example.com"),
    DemoPerson(5550002, "+375291110002", "Boris", "Petrov", "boris@example.com"),
    DemoPerson(5550003, None, "Vera", "Sidorova", "vera@example.com"),
)


def _hosting() -> MetaData:
    metadata = MetaData()
    Table(
        "accounts",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("telegram_id", BigInteger, index=True),
        Column("first_name", String(100)),
        Column("last_name", String(100)),
        Column("email", String(255)),
        Column("phone", String(64)),
        Column("restricted", Boolean, nullable=False, default=False),
        Column("created_at", DateTime),
    )
    Table(
        "services",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
        Column("service", String(100)),
        Column("domain", String(255)),
        Column("started_on", Date),
    )
    Table(
        "orders",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
        Column("item", String(200)),
        Column("amount", Numeric(10, 2)),
        Column("ordered_at", DateTime),
    )
    Table(
        "invoices",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
        Column("number", String(32)),
        Column("payer_name", String(200)),
        Column("payer_address", String(255)),
        Column("amount", Numeric(10, 2)),
        Column("issued_on", Date),
    )
    return metadata


def _sports() -> MetaData:
    metadata = MetaData()
    Table(
        "profiles",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("phone", String(32), unique=True),
        Column("telegram_id", BigInteger),
        Column("username", String(64)),
        Column("full_name", String(200)),
        Column("email", String(255)),
        Column("country", String(2)),
        Column("age_group", String(16)),
        Column("restricted", Boolean, nullable=False, default=False),
    )
    Table(
        "subscriptions",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("profile_id", ForeignKey("profiles.id"), nullable=False, index=True),
        Column("plan", String(64)),
        Column("started_on", Date),
        Column("ends_on", Date),
    )
    Table(
        "payments",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("profile_id", ForeignKey("profiles.id"), nullable=True, index=True),
        Column("payment_ref", String(64)),
        Column("status", String(16)),
        Column("amount", Numeric(10, 2)),
        Column("payer_email", String(255)),
        Column("paid_at", DateTime),
    )
    return metadata


def _hosting_rows(number: int, person: DemoPerson) -> dict[str, list[dict[str, Any]]]:
    account = {
        "id": number,
        "telegram_id": person.telegram_id,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "email": person.email,
        "phone": person.phone,
        "restricted": False,
        "created_at": datetime(2024, 3, 1, 10, 0),
    }
    return {
        "accounts": [account],
        "services": [
            {
                "id": number * 2 + offset,
                "account_id": number,
                "service": service,
                "domain": f"{person.first_name.lower()}{number}.by",
                "started_on": date(2024, 3, 1),
            }
            for offset, service in enumerate(("VPS", "Domain"))
        ],
        "orders": [
            {
                "id": number,
                "account_id": number,
                "item": "VPS S",
                "amount": Decimal("19.90"),
                "ordered_at": datetime(2024, 3, 1, 10, 5),
            }
        ],
        "invoices": [
            {
                "id": number,
                "account_id": number,
                "number": f"INV-{number:06d}",
                "payer_name": f"{person.first_name} {person.last_name}",
                "payer_address": "Minsk, Nezavisimosti Ave. 1",
                "amount": Decimal("19.90"),
                "issued_on": date(2024, 3, 1),
            }
        ],
    }


def _sports_rows(number: int, person: DemoPerson) -> dict[str, list[dict[str, Any]]]:
    profile = {
        "id": number,
        "phone": person.phone,
        "telegram_id": person.telegram_id,
        "username": f"{person.first_name.lower()}{number}",
        "full_name": f"{person.first_name} {person.last_name}",
        "email": person.email,
        "country": "BY",
        "age_group": "16+",
        "restricted": False,
    }
    return {
        "profiles": [profile],
        "subscriptions": [
            {
                "id": number,
                "profile_id": number,
                "plan": "Pro",
                "started_on": date(2025, 1, 1),
                "ends_on": date(2026, 1, 1),
            }
        ],
        "payments": [
            {
                "id": number,
                "profile_id": number,
                "payment_ref": f"PAY-{number:08d}",
                "status": "paid",
                "amount": Decimal("9.99"),
                "payer_email": person.email,
                "paid_at": datetime(2025, 1, 1, 12, 0),
            }
        ],
    }


Rows = Callable[[int, DemoPerson], dict[str, list[dict[str, Any]]]]
# "<pack id>.<system id>" -> (its schema, the rows of one person)
DEMOS: dict[str, tuple[Callable[[], MetaData], Rows]] = {
    "gdpr_hosting.accounts": (_hosting, _hosting_rows),
    "by_99z_sports.accounts": (_sports, _sports_rows),
}


def demo_metadata(name: str) -> MetaData:
    return DEMOS[name][0]()


async def existing_tables(engine: AsyncEngine, name: str) -> list[str]:
    """The demo's tables that already exist in the database."""
    wanted = list(demo_metadata(name).tables)
    async with engine.connect() as connection:
        present = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    return [t for t in wanted if t in present]


async def create_demo(
    engine: AsyncEngine,
    name: str,
    people: Sequence[DemoPerson] = DEMO_PEOPLE,
    *,
    replace: bool = False,
) -> int:
    """Create the demo's tables (dropping them first with `replace`) and its people; the
    number of people written."""
    metadata, rows = demo_metadata(name), DEMOS[name][1]
    async with engine.begin() as connection:
        if replace:
            await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await _insert(connection, metadata, (rows(n, p) for n, p in enumerate(people, 1)))
    return len(people)


async def fill_demo(engine: AsyncEngine, name: str, count: int, *, batch: int = 5000) -> None:
    """`count` synthetic people (Telegram IDs from 10,000,000 on, phones +37529<7 digits>) in an
    empty demo database, in batches (the benchmark)."""
    metadata, rows = demo_metadata(name), DEMOS[name][1]
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    for start in range(0, count, batch):
        numbers = range(start, min(start + batch, count))
        async with engine.begin() as connection:
            await _insert(connection, metadata, (rows(n + 1, bench_person(n)) for n in numbers))


def bench_person(n: int) -> DemoPerson:
    return DemoPerson(10_000_000 + n, f"+37529{n:07d}", "Bench", f"Person{n}", f"p{n}@example.com")


async def _insert(
    connection: Any, metadata: MetaData, people: Iterable[dict[str, list[dict[str, Any]]]]
) -> None:
    merged: dict[str, list[dict[str, Any]]] = {name: [] for name in metadata.tables}
    for person in people:
        for table, found in person.items():
            merged[table].extend(found)
    for table in metadata.sorted_tables:
        if merged[table.name]:
            await connection.execute(insert(table), merged[table.name])
