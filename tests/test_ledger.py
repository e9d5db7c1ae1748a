"""/ledger: the consent ledger as CSV for an authority, all events or one user's, streamed."""

from __future__ import annotations

import csv
import io

from bot.telegram.files import LEDGER_COLUMNS, CsvStream, ledger_rows
from storage.repositories import Repositories
from tests.kit import Harness
from tests.test_campaigns import subscriber


def rows_of(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


async def test_ledger_of_everyone_and_of_one_user(bot: Harness) -> None:
    ann = await subscriber(bot, "Ann")
    boris = await subscriber(bot, "Борис", lang="ru")
    await ann.send("/consents")
    await ann.tap("✅ Marketing messages")  # withdrawn
    dpo = bot.staff("Dana")
    agent = bot.staff("Alex", status="member")
    await dpo.send(f"/role {agent.id} agent")

    await dpo.send("/ledger")
    [document] = [e for e in dpo.last.events if e.kind == "document"]
    assert document.text.startswith("Журнал согласий: все события, 3 события")
    assert document.raw["file_name"].startswith("consent-ledger-")
    rows = rows_of(document.raw["content"])
    assert list(rows[0]) == list(LEDGER_COLUMNS)
    assert [(r["user_id"], r["purpose"], r["state"], r["source"]) for r in rows] == [
        (str(ann.id), "marketing", "granted", "toggle"),
        (str(boris.id), "marketing", "granted", "toggle"),
        (str(ann.id), "marketing", "withdrawn", "toggle"),
    ]
    first = rows[0]
    assert first["at_utc"] == "2026-11-23T09:00:00+00:00"
    assert first["policy_version"] and first["text_id"] and first["actor_id"] == str(ann.id)
    # The file is streamed from the database: a batch of rows at a time, uploaded in chunks.
    async with bot.app.sessions() as session:
        events = Repositories(session).consents.ledger(batch=1)
        stream = CsvStream(LEDGER_COLUMNS, ledger_rows(events), "l.csv", chunk_size=64)
        chunks = [chunk async for chunk in stream.read(bot.app.bot)]
    assert len(chunks) > 3 and b"".join(chunks) == document.raw["content"]

    await dpo.send(f"/ledger {boris.id}")
    [document] = [e for e in dpo.last.events if e.kind == "document"]
    assert f"пользователя {boris.id}" in document.text
    assert [r["user_id"] for r in rows_of(document.raw["content"])] == [str(boris.id)]

    await dpo.send("/ledger 42")
    dpo.expect("Нет такого пользователя")
    await agent.send("/ledger")
    agent.expect("Это действие доступно роли: DPO. Ваша роль: агент.")


async def test_csv_is_streamed_in_chunks() -> None:
    async def rows():  # type: ignore[no-untyped-def]
        for n in range(1000):
            yield [n, "x" * 50]

    stream = CsvStream(["n", "text"], rows(), "big.csv", chunk_size=4096)
    chunks = [chunk async for chunk in stream.read(None)]  # type: ignore[arg-type]
    assert len(chunks) > 10 and all(len(c) < 4096 + 100 for c in chunks)
    assert b"".join(chunks).decode().splitlines()[-1] == "999," + "x" * 50
