"""The sql connector against real databases: SQLite always, PostgreSQL and MariaDB when
reachable (tests/systems_servers.py). Each test builds a shipped pack's demo database
(storage.external.demo), runs the connector as the worker would, and checks the result by
querying the database directly."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.law import RequestType
from bot.core.packs import load_pack
from bot.core.systems import System
from bot.delivery.systems.sql import SqlConnector
from bot.domain.systems import Correction, Done, Failed, Subject, Work
from storage.external import open_engine, read_only
from storage.external.actions import json_safe
from storage.external.demo import create_demo, demo_metadata
from tests import systems_servers as servers

SECRET = "pseudonym-secret-for-tests"
ANNA = Subject(5550001, "+375291110001")
BORIS = Subject(5550002, "+375291110002")


@pytest.fixture(scope="module", autouse=True)
def _drop_databases() -> Iterator[None]:
    yield
    servers.drop_databases()


@pytest.fixture(params=servers.ENGINES)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty operator database on each engine."""
    servers.require(request.param)
    await servers.empty(request.param)
    yield servers.database_url(request.param, tmp_path)


def system(pack: str = "gdpr_hosting", system_id: str = "accounts") -> System:
    found = load_pack(pack).system(system_id)
    assert found is not None
    return found


async def demo(url: str, pack: str = "gdpr_hosting") -> AsyncEngine:
    """The pack's demo database at `url`, and an engine to look at it directly."""
    engine = open_engine(url)
    await create_demo(engine, f"{pack}.accounts")
    return engine


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(r) for r in await connection.execute(text(sql), params)]


async def everything(engine: AsyncEngine, pack: str = "gdpr_hosting") -> dict[str, list[Any]]:
    tables = demo_metadata(f"{pack}.accounts").tables
    return {name: sorted(map(repr, await rows(engine, f"SELECT * FROM {name}"))) for name in tables}


def keyed(value: str) -> str:
    return hmac.new(SECRET.encode(), value.encode(), hashlib.sha256).hexdigest()


def work(action: RequestType, subject: Subject = ANNA, **extra: Any) -> Work:
    return Work(job_id=1, action=action, subject=subject, request_id=1, **extra)


async def test_access_reads_the_persons_rows_by_category(url: str) -> None:
    engine = await demo(url)
    connector = SqlConnector(system(), url, SECRET)
    try:
        done = await connector.run(work(RequestType.ACCESS))
    finally:
        await connector.close()
        await engine.dispose()
    assert isinstance(done, Done)
    assert done.counts == {"accounts": 1, "services": 2, "orders": 1, "invoices": 1}
    assert done.found["contact_details"] == [
        {
            "source": "accounts",
            "fields": {
                "first_name": "Anna",
                "last_name": "Ivanova",
                "email": "anna@example.com",
                "phone": "+375291110001",
            },
        }
    ]
    services = [r for r in done.found["services"] if r["source"] == "services"]
    assert sorted(r["fields"]["service"] for r in services) == ["Domain", "VPS"]
    (order,) = [r for r in done.found["services"] if r["source"] == "orders"]
    assert order["fields"] == {
        "item": "VPS S",
        "amount": "19.90",
        "ordered_at": "2024-03-01T10:05:00",
    }
    (invoice,) = done.found["payments"]
    assert invoice["fields"]["issued_on"] == "2024-03-01"
    assert invoice["fields"]["payer_name"] == "Anna Ivanova"
    # Boris's rows are not Anna's.
    assert "Boris" not in repr(done.found)


async def test_erasure_deletes_and_pseudonymises_and_runs_twice_harmlessly(url: str) -> None:
    engine = await demo(url)
    connector = SqlConnector(system(), url, SECRET)
    boris_before = await rows(engine, "SELECT * FROM accounts WHERE telegram_id = 5550002")
    try:
        done = await connector.run(work(RequestType.ERASURE))
        assert isinstance(done, Done)
        assert done.counts == {"accounts": 1, "services": 2, "orders": 1, "invoices": 1}
        assert done.kept == ("accounts", "invoices")

        assert await rows(engine, "SELECT id FROM services WHERE account_id = 1") == []
        assert await rows(engine, "SELECT id FROM orders WHERE account_id = 1") == []
        account = await rows(
            engine,
            "SELECT telegram_id, first_name, last_name, email, phone, created_at "
            "FROM accounts WHERE id = 1",
        )
        assert account[0][:5] == (None, None, None, keyed("anna@example.com"), None)
        assert account[0][5] is not None  # erase = "keep"
        invoice = await rows(
            engine, "SELECT number, payer_name, payer_address, amount FROM invoices WHERE id = 1"
        )
        assert invoice[0][:3] == ("INV-000001", keyed("Anna Ivanova"), "[erased]")
        assert float(invoice[0][3]) == 19.9  # erase = "keep"
        # Nobody else's rows changed.
        assert await rows(engine, "SELECT * FROM accounts WHERE telegram_id = 5550002") == (
            boris_before
        )
        assert len(await rows(engine, "SELECT id FROM services WHERE account_id = 2")) == 2

        after = await everything(engine)
        again = await connector.run(work(RequestType.ERASURE))
        assert again == Done(counts={"accounts": 0, "services": 0, "orders": 0, "invoices": 0})
        assert await everything(engine) == after
    finally:
        await connector.close()
        await engine.dispose()


async def test_a_table_found_by_the_verified_phone(url: str) -> None:
    """The sports pack's accounts are bound to the phone: erasure deletes the profile and the
    subscription, and keeps the payment cut from the profile, its e-mail hashed."""
    engine = await demo(url, "by_99z_sports")
    connector = SqlConnector(system("by_99z_sports"), url, SECRET)
    try:
        unknown = await connector.run(work(RequestType.ACCESS, Subject(ANNA.telegram_id)))
        assert isinstance(unknown, Done)
        assert unknown.counts == {"profiles": 0, "subscriptions": 0, "payments": 0}

        read = await connector.run(work(RequestType.ACCESS))
        assert isinstance(read, Done)
        assert read.counts == {"profiles": 1, "subscriptions": 1, "payments": 1}
        assert read.found["account"][0]["fields"]["telegram_id"] == ANNA.telegram_id

        done = await connector.run(work(RequestType.ERASURE))
        assert isinstance(done, Done)
        assert done.counts == {"profiles": 1, "subscriptions": 1, "payments": 1}
        assert done.kept == ("payments",)
        assert await rows(engine, "SELECT id FROM profiles WHERE id = 1") == []
        assert await rows(engine, "SELECT id FROM subscriptions WHERE profile_id = 1") == []
        assert await rows(
            engine, "SELECT profile_id, payment_ref, payer_email FROM payments WHERE id = 1"
        ) == [(None, "PAY-00000001", keyed("anna@example.com"))]
        assert len(await rows(engine, "SELECT id FROM profiles")) == 2
        again = await connector.run(work(RequestType.ERASURE))
        assert again == Done(counts={"profiles": 0, "subscriptions": 0, "payments": 0})
    finally:
        await connector.close()
        await engine.dispose()


async def test_correction_and_restriction(url: str) -> None:
    engine = await demo(url)
    connector = SqlConnector(system(), url, SECRET)
    try:
        fix = work(RequestType.RECTIFICATION, correction=Correction("last_name", "Ivanova-Petrova"))
        assert await connector.run(fix) == Done(counts={"accounts": 1})
        assert await connector.run(fix) == Done(counts={"accounts": 0})  # nothing left to change
        assert await rows(engine, "SELECT last_name FROM accounts ORDER BY id") == [
            ("Ivanova-Petrova",),
            ("Petrov",),
            ("Sidorova",),
        ]
        restrict = work(RequestType.RESTRICTION)
        assert await connector.run(restrict) == Done(counts={"accounts": 1})
        assert await connector.run(restrict) == Done(counts={"accounts": 0})
        flags = await rows(engine, "SELECT restricted FROM accounts ORDER BY id")
        assert [bool(f) for (f,) in flags] == [True, False, False]
    finally:
        await connector.close()
        await engine.dispose()


async def test_access_runs_in_a_read_only_transaction(url: str) -> None:
    engine = await demo(url)
    try:
        async with read_only(engine) as connection:
            assert (await connection.execute(text("SELECT COUNT(*) FROM accounts"))).scalar() == 3
        with pytest.raises(Exception) as refused:
            async with read_only(engine) as connection:
                await connection.execute(text("UPDATE accounts SET first_name = 'X'"))
        assert "read" in str(refused.value).lower() or "only" in str(refused.value).lower()
        assert await rows(engine, "SELECT first_name FROM accounts WHERE first_name = 'X'") == []
        # The pooled connection is writable again afterwards (SQLite's pragma is reset).
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE accounts SET email = email"))
    finally:
        await engine.dispose()


async def test_dry_run_counts_and_changes_nothing(url: str) -> None:
    engine = await demo(url)
    connector = SqlConnector(system(), url, SECRET)
    try:
        before = await everything(engine)
        lines = await connector.dry_run(ANNA)
        assert lines == [
            "accounts.accounts: access reads 1 row(s), erasure pseudonymises 1 (rows kept)",
            "accounts.services: access reads 2 row(s), erasure deletes 2",
            "accounts.orders: access reads 1 row(s), erasure deletes 1",
            "accounts.invoices: access reads 1 row(s), erasure pseudonymises 1 (rows kept)",
        ]
        assert await everything(engine) == before
    finally:
        await connector.close()
        await engine.dispose()


async def test_check_reports_missing_tables_columns_and_unindexed_identities(url: str) -> None:
    engine = open_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE TABLE accounts (id INTEGER PRIMARY KEY, telegram_id BIGINT, "
                "first_name VARCHAR(100), email VARCHAR(20), restricted BOOLEAN)"
            )
        )
        await connection.execute(
            text(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY, account_id INTEGER, "
                "item VARCHAR(200), amount DECIMAL(10, 2), ordered_at DATE)"
            )
        )
    await engine.dispose()
    connector = SqlConnector(system(), url, SECRET)
    try:
        problems = await connector.check()
        assert problems == [
            "accounts: table accounts has no column last_name (field)",
            "accounts: table accounts has no column phone (field)",
            "accounts: table accounts has no column created_at (field)",
            "accounts: table services is missing",
            "accounts: table orders: parent column account_id has no index "
            "(each lookup would scan the table)",
            "accounts: table invoices is missing",
        ]
        failed = await connector.run(work(RequestType.ACCESS))
        assert isinstance(failed, Failed)
        assert "does not match the pack" in failed.reason
    finally:
        await connector.close()


async def test_a_pack_naming_a_missing_column_gets_one_line(url: str) -> None:
    engine = await demo(url)
    await engine.dispose()
    shipped = system()
    tables = [t.model_copy() for t in shipped.tables]
    invoices = tables[3]
    fields = [
        f.model_copy(update={"column": "payer_addr"}) if f.column == "payer_address" else f
        for f in invoices.fields
    ]
    tables[3] = invoices.model_copy(update={"fields": fields})
    connector = SqlConnector(shipped.model_copy(update={"tables": tables}), url, SECRET)
    try:
        assert await connector.check() == [
            "accounts: table invoices has no column payer_addr (field)"
        ]
    finally:
        await connector.close()


async def test_unindexed_identity_and_unfit_erasures_are_reported(url: str) -> None:
    engine = open_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE TABLE accounts (id INTEGER PRIMARY KEY, telegram_id BIGINT, "
                "first_name VARCHAR(100) NOT NULL, last_name VARCHAR(100), email VARCHAR(20), "
                "phone VARCHAR(64), restricted BOOLEAN, created_at DATE)"
            )
        )
    await engine.dispose()
    accounts = system().tables[0]
    connector = SqlConnector(system().model_copy(update={"tables": [accounts]}), url, SECRET)
    try:
        assert await connector.check() == [
            "accounts: table accounts: identity column telegram_id has no index "
            "(each lookup would scan the table)",
            "accounts: table accounts: column first_name is NOT NULL: erase = 'null' cannot "
            "empty it",
            "accounts: table accounts: column email holds 20 characters, erase = 'hash' writes 64",
        ]
    finally:
        await connector.close()


@pytest.mark.parametrize("pack", ["gdpr_hosting", "by_99z_sports"])
async def test_each_shipped_pack_matches_its_demo_database(url: str, pack: str) -> None:
    engine = await demo(url, pack)
    await engine.dispose()
    connector = SqlConnector(system(pack), url, SECRET)
    try:
        assert await connector.check() == []
    finally:
        await connector.close()


def test_values_are_made_json_safe() -> None:
    assert json_safe(date(2024, 3, 1)) == "2024-03-01"
    assert json_safe(datetime(2024, 3, 1, 10, 5)) == "2024-03-01T10:05:00"
    assert json_safe(Decimal("19.90")) == "19.90"
    assert json_safe(7) == 7 and json_safe(None) is None and json_safe("a") == "a"
    from storage.external.actions import _SKIP

    assert json_safe(b"\x00") is _SKIP


async def test_a_database_down_fails_without_secrets_then_works_when_back(
    url: str, tmp_path: Path
) -> None:
    """Down (the server's port closed, or SQLite's folder gone): the job fails naming the system
    and the error's class, never the URL, the user, the password or a value; back, the same
    connector (its pooled connection dead) does the job."""
    kind = "sqlite" if url.startswith("sqlite") else url.split("+")[0]
    if kind == "sqlite":
        folder = tmp_path / "gone"
        down_url = f"sqlite+aiosqlite:///{folder / 'operator.db'}"
        connector = SqlConnector(system(), down_url, SECRET)
        try:
            failed = await connector.run(work(RequestType.ACCESS))
            assert isinstance(failed, Failed)
            assert failed.reason.startswith("accounts: OperationalError")
            assert str(folder) not in failed.reason
            folder.mkdir()
            await (await demo(down_url)).dispose()
            assert isinstance(await connector.run(work(RequestType.ACCESS)), Done)
        finally:
            await connector.close()
        return
    await (await demo(url)).dispose()
    kind = "postgresql" if kind == "postgresql" else "mariadb"
    async with servers.proxied(kind, tmp_path) as (proxy, through):
        if kind == "postgresql":  # trust authentication: the password is not checked
            through = through.replace("postgres@", "postgres:Sup3rSecretPw@")
        connector = SqlConnector(system(), through, SECRET)
        try:
            assert isinstance(await connector.run(work(RequestType.ACCESS)), Done)
            await proxy.stop()
            failed = await connector.run(work(RequestType.ERASURE))
            assert isinstance(failed, Failed)
            assert failed.reason.endswith("connection refused"), failed.reason
            for secret in ("Sup3rSecretPw", "127.0.0.1", str(proxy.port), "root", "postgres:"):
                assert secret not in failed.reason
            problems = await connector.check()
            assert len(problems) == 1 and "cannot connect" in problems[0]
            await proxy.start()
            done = await connector.run(work(RequestType.ERASURE))
            assert isinstance(done, Done) and done.counts["services"] == 2
        finally:
            await connector.close()


ROLE_GRANTS = {  # README, "The database role to create" (the hosting demo)
    "postgresql": [
        "GRANT USAGE ON SCHEMA public TO {who}",
        "GRANT SELECT ON accounts, services, orders, invoices TO {who}",
        "GRANT UPDATE (telegram_id, first_name, last_name, email, phone, restricted) "
        "ON accounts TO {who}",
        "GRANT UPDATE (payer_name, payer_address) ON invoices TO {who}",
        "GRANT DELETE ON services, orders TO {who}",
    ],
    "mariadb": [
        *(f"GRANT SELECT ON {{db}}.{t} TO {{who}}" for t in ("accounts", "services", "orders")),
        "GRANT SELECT ON {db}.invoices TO {who}",
        "GRANT UPDATE (telegram_id, first_name, last_name, email, phone, restricted) "
        "ON {db}.accounts TO {who}",
        "GRANT UPDATE (payer_name, payer_address) ON {db}.invoices TO {who}",
        "GRANT DELETE ON {db}.services TO {who}",
        "GRANT DELETE ON {db}.orders TO {who}",
    ],
}


async def test_the_least_privilege_role_of_the_readme_suffices(url: str) -> None:
    """Every action through a role holding only the README's grants; writing anything else is
    refused by the database."""
    if url.startswith("sqlite"):
        pytest.skip("SQLite has no roles")
    kind = "postgresql" if url.startswith("postgresql") else "mariadb"
    await (await demo(url)).dispose()
    name = f"sqlsys_desk_{os.getpid()}"
    who = name if kind == "postgresql" else f"'{name}'@'%'"
    create = (
        [f"DROP ROLE IF EXISTS {name}", f"CREATE ROLE {name} LOGIN PASSWORD 'pw'"]
        if kind == "postgresql"
        else [f"DROP USER IF EXISTS {who}", f"CREATE USER {who} IDENTIFIED BY 'pw'"]
    )
    grants = [g.format(who=who, db=servers.DATABASE) for g in ROLE_GRANTS[kind]]
    await servers._admin_sql(kind, create + grants, servers.DATABASE)
    role_url = make_url(url).set(username=name, password="pw").render_as_string(False)
    connector = SqlConnector(system(), role_url, SECRET)
    try:
        assert await connector.check() == []
        assert isinstance(await connector.run(work(RequestType.ACCESS)), Done)
        fix = work(RequestType.RECTIFICATION, correction=Correction("first_name", "Anya"))
        assert await connector.run(fix) == Done(counts={"accounts": 1})
        assert await connector.run(work(RequestType.RESTRICTION)) == Done(counts={"accounts": 1})
        erased = await connector.run(work(RequestType.ERASURE))
        assert isinstance(erased, Done) and erased.counts["services"] == 2
        engine = open_engine(role_url)
        try:
            with pytest.raises(Exception, match=r"(?i)denied|permission"):
                async with engine.begin() as connection:
                    await connection.execute(text("DELETE FROM invoices"))
        finally:
            await engine.dispose()
    finally:
        await connector.close()
        drop = f"DROP ROLE IF EXISTS {name}" if kind == "postgresql" else f"DROP USER {who}"
        revoke = [f"DROP OWNED BY {name}"] if kind == "postgresql" else []
        await servers._admin_sql(kind, [*revoke, drop], servers.DATABASE)


async def test_a_hashed_value_is_not_hashed_again(url: str) -> None:
    """Where the identity stays (not erased), a second erasure finds the rows again: their
    hashed fields are recognised and left alone, the NULLs stay NULL, nothing is counted."""
    engine = await demo(url)
    accounts = system().tables[0]
    fields = [f for f in accounts.fields if f.column != "telegram_id"]
    kept_identity = accounts.model_copy(update={"fields": fields})
    only = system().model_copy(update={"tables": [kept_identity]})
    connector = SqlConnector(only, url, SECRET)
    try:
        assert await connector.run(work(RequestType.ERASURE)) == Done(
            counts={"accounts": 1}, kept=("accounts",)
        )
        after = await everything(engine)
        assert await connector.run(work(RequestType.ERASURE)) == Done(
            counts={"accounts": 0}, kept=("accounts",)
        )
        assert await everything(engine) == after
        assert await rows(engine, "SELECT email FROM accounts WHERE telegram_id = 5550001") == [
            (keyed("anna@example.com"),)
        ]
    finally:
        await connector.close()
        await engine.dispose()


async def test_a_schema_changed_under_the_bot_is_checked_again(url: str) -> None:
    engine = await demo(url)
    connector = SqlConnector(system(), url, SECRET)
    try:
        assert isinstance(await connector.run(work(RequestType.ACCESS)), Done)
        async with engine.begin() as connection:
            await connection.execute(text("ALTER TABLE invoices DROP COLUMN payer_address"))
        failed = await connector.run(work(RequestType.ACCESS))
        assert isinstance(failed, Failed) and failed.reason.startswith("accounts: ")
        again = await connector.run(work(RequestType.ACCESS))
        assert isinstance(again, Failed) and "does not match the pack" in again.reason
        assert await connector.check() == [
            "accounts: table invoices has no column payer_address (field)"
        ]
    finally:
        await connector.close()
        await engine.dispose()


async def test_rows_kept_under_parents_that_go_must_let_go_of_them(url: str) -> None:
    engine = await demo(url, "by_99z_sports")
    await engine.dispose()
    shipped = system("by_99z_sports")
    payments = shipped.tables[2]
    fields = [f for f in payments.fields if f.column != "profile_id"]
    tables = [*shipped.tables[:2], payments.model_copy(update={"fields": fields})]
    connector = SqlConnector(shipped.model_copy(update={"tables": tables}), url, SECRET)
    try:
        assert await connector.check() == [
            "accounts: table payments keeps its rows but erasure deletes the profiles rows they "
            "refer to: list profile_id among its fields with erase = 'null'"
        ]
    finally:
        await connector.close()
