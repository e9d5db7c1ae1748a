"""The limits the law puts on staff decisions (issue 20, points 1, 5, 7 and 9): refusal grounds
are the pack's, each with its article; a GDPR extension only within the first month from
receipt and never beyond three months plus the pause; the disclosures right (99-Z art. 12) with
repeats in a calendar year marked; one clarification per request by an agent, further ones by a
DPO with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.law import DayKind
from bot.core.packs import load_pack
from bot.core.policy import Deadline, RequestType
from bot.core.roles import Need, need_for
from bot.domain.requests.desk import Desk
from bot.domain.requests.rules import DeskRule, NoExtension, extended_due
from storage.models import AuditEntry, RequestMessage
from storage.repositories import Repositories
from tests.conftest import gdpr_only_pack
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness, Person
from tests.test_consents import onboarded
from tests.test_requests import file_erasure, stored

MINSK = load_pack("gdpr_hosting").zone


def card_of(bot: Harness, number: int) -> dict[str, Any]:
    """The card of request `number`, as it is now."""
    for event in bot.cards():
        if f"№{number} " in event.text:
            return bot.fake.messages[(ADMIN_CHAT_ID, event.message_id)]
    raise AssertionError(f"no card for request {number}")


def labels(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["text"] for row in rows for b in row]


async def kinds(bot: Harness, number: int) -> list[str]:
    async with bot.app.sessions() as session:
        rows = await session.scalars(
            select(RequestMessage.kind)
            .where(RequestMessage.request_id == number)
            .order_by(RequestMessage.id)
        )
        return list(rows)


async def audit(bot: Harness, actor: Person) -> list[tuple[str, bool]]:
    async with bot.app.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.actor_id == actor.id).order_by(AuditEntry.id)
        )
        return [(a.action, a.allowed) for a in rows]


async def file_access(bot: Harness, person: Person, label: str) -> int:
    """A request with no questions (access, disclosures, portability), filed from /rights."""
    await person.send("/rights")
    await person.tap(label)
    await person.tap("✅")
    received = person.expect("✅ ")
    mark = "№" if "№" in received.text else "#"
    return int(received.text.split(mark)[1].split()[0])


# --- point 1: refusal grounds per pack --------------------------------------------------------


async def test_a_99z_desk_offers_only_the_grounds_of_law_99z(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    staff = bot.staff("Sam")
    access = await file_access(bot, ann, "🔎 What do you hold about me?")
    erasure = await file_erasure(bot, ann)
    await bot.settle()
    buttons = labels(card_of(bot, access))
    assert "⛔ информация не предоставляется по закону" in buttons  # 99-Z art. 11(4)
    assert not any("еобоснованн" in b or "чрезмерн" in b for b in buttons)  # GDPR art. 12(5)
    assert "⛔ есть законные основания продолжать обработку" in labels(card_of(bot, erasure))
    assert "⛔ информация не предоставляется по закону" not in labels(card_of(bot, erasure))

    await staff.tap_data(f"v1ground:{access}:exempt_by_law", card_of(bot, access))
    prompt = staff.expect("пояснением отказа по заявлению №1")
    assert "(п. 4 ст. 11 Закона № 99-З)" in prompt.text
    await staff.reply_to(prompt, "The data is published in the state register")
    await bot.settle()
    told = ann.inbox[-1].text
    assert "refused on the ground: the law exempts this information (Law No. 99-Z, art. 11(4))" in (
        told
    )
    assert "Explanation: The data is published in the state register" in told
    assert "Where to complain: to the National Personal Data Protection Center" in told
    request = await stored(bot, access)
    assert (request.status, request.refusal_ground) == ("refused", "exempt_by_law")
    card = card_of(bot, access)["text"]
    assert "Основание отказа: информация не предоставляется по закону (п. 4 ст. 11" in card
    assert await kinds(bot, access) == ["refusal"]


async def test_forged_and_foreign_grounds_change_nothing(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    staff = bot.staff("Sam")
    eve = bot.staff("Eve", status="member")  # in the group, not staff
    number = await file_erasure(bot, ann)
    await bot.settle()
    card = card_of(bot, number)

    def edits() -> int:
        return sum(
            (e.kind, e.chat_id, e.message_id) == ("edit", ADMIN_CHAT_ID, card["message_id"])
            for e in bot.fake.events
        )  # message ids count per chat: the user's own messages have the same numbers

    for data in (
        f"v1ground:{number}:unfounded",  # GDPR art. 12(5): not in Law 99-Z
        f"v1ground:{number}:legal_obligation",  # the hosting pack's
        f"v1ground:{number}:exempt_by_law",  # 99-Z's, but for access, not erasure
    ):
        await staff.tap_data(data, card)
        alert = staff.expect("не даёт такого основания отказа")
        assert alert.show_alert, data
    await bot.settle()
    assert edits() == 0
    old = [{"text": "⛔ Отказать", "callback_data": f"v1req:{number}:refuse"}]
    card["reply_markup"] = {"inline_keyboard": [old]}  # as cards were before grounds
    for data in (
        f"v1req:{number}:unfounded",  # an older card's button
        f"v1req:{number}:refuse",  # an older card's Refuse, no ground
    ):
        await staff.tap_data(data, card)
        alert = staff.expect("не даёт такого основания отказа")
        assert alert.show_alert, data
    await bot.settle()
    assert edits() >= 1  # the older card is shown again with today's buttons
    assert "⛔ есть законные основания продолжать обработку" in labels(card_of(bot, number))
    await staff.tap_data(f"v1ground:{number}:{'x' * 30}", card)  # too long: a stale button
    staff.expect("больше не действует")
    await eve.tap_data(f"v1ground:{number}:lawful_grounds", card)
    assert eve.expect("Только для сотрудников").show_alert
    await staff.send("Refused!")  # no prompt was opened: nothing is taken as a reason
    await bot.settle()
    request = await stored(bot, number)
    assert (request.status, request.refusal_ground, request.reason) == ("received", None, None)
    assert await kinds(bot, number) == []
    assert not any("refused" in e.text for e in ann.inbox)
    assert ("request.refuse.start", False) in await audit(bot, eve)

    # The domain checks the ground too, whoever calls it.
    async with bot.app.sessions() as session:
        desk = Desk(Repositories(session), bot.app.clock, bot.pack)
        request = await Repositories(session).requests.get(number)
        assert request is not None
        assert await desk.refuse(request, staff.id, "No", "unfounded") is DeskRule.NO_GROUND
    assert (await stored(bot, number)).status == "received"


async def test_the_hosting_pack_lists_only_grounds_valid_under_both_laws(
    gdpr_bot: Harness,
) -> None:
    pack = gdpr_bot.pack
    assert {g.id for g in pack.refusal_grounds} == {
        "not_shown_inaccurate",
        "legal_obligation",
        "not_portable",
    }
    assert pack.grounds_for(RequestType.ACCESS) == []  # neither 12(5) nor 15(4): answered
    ann = await onboarded(gdpr_bot, "Ann")
    staff = gdpr_bot.staff("Sam")
    number = await file_erasure(gdpr_bot, ann)
    await gdpr_bot.settle()
    buttons = labels(card_of(gdpr_bot, number))
    assert "⛔ хранить данные обязывает закон" in buttons
    assert not any("еобоснованн" in b for b in buttons)
    await staff.tap_data(f"v1req:{number}:unfounded", card_of(gdpr_bot, number))
    assert staff.expect("не даёт такого основания отказа").show_alert
    await staff.tap("⛔ хранить данные обязывает закон")
    await staff.reply_to(staff.expect("пояснением отказа"), "Tax law: 5 years")
    await gdpr_bot.settle()
    told = ann.inbox[-1].text
    assert "(GDPR Art. 17(3)(b); Law No. 99-Z, art. 13(4))" in told
    assert "You may also go to a court (GDPR Art. 79)" in told


async def test_unfounded_keeps_its_stored_id_in_a_gdpr_only_pack(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> None:
    """An operator under the GDPR alone may give the art. 12(5) ground: its id `unfounded` is
    the older cards' button and is stored as the `refusal_unfounded` kind, as before."""
    text = (Path(__file__).parent.parent / "bot" / "packs" / "gdpr_hosting.toml").read_text("utf-8")
    text += (
        '\n[[refusal_grounds]]\nid = "unfounded"\n'
        'title = { ru = "явно необоснованное или чрезмерное", '
        'en = "manifestly unfounded or excessive" }\n'
        'article = { ru = "п. 5 ст. 12 GDPR", en = "GDPR Art. 12(5)" }\n'
    )
    path = tmp_path / "gdpr_only.toml"
    path.write_text(text, "utf-8")
    bot = await Harness(fake, tmp_path, pack=str(path), clock=clock).start()
    try:
        boris = await onboarded(bot, "Борис", lang="ru")
        staff = bot.staff("Sam")
        number = await file_access(bot, boris, "📦 Выгрузить мои данные")
        await bot.settle()
        assert "⛔ явно необоснованное или чрезмерное" in labels(card_of(bot, number))
        await staff.tap_data(f"v1req:{number}:unfounded", card_of(bot, number))  # older card
        prompt = staff.expect("пояснением отказа")
        await staff.reply_to(prompt, "Пятый одинаковый запрос за неделю")
        await bot.settle()
        told = boris.inbox[-1].text
        assert "В удовлетворении заявления №1" in told
        assert "явно необоснованное или чрезмерное (п. 5 ст. 12 GDPR)" in told
        assert "Пояснение: Пятый одинаковый запрос за неделю" in told
        assert "Куда жаловаться:\n• в Национальный центр" in told
        assert "\n• в надзорный орган" in told
        assert await kinds(bot, number) == ["refusal_unfounded"]
        assert (await stored(bot, number)).refusal_ground == "unfounded"
    finally:
        await bot.stop()


# --- point 5: a GDPR extension within the first month, capped ---------------------------------


def local(day: str, hour: int = 10) -> datetime:
    """A moment in Minsk (the packs' zone), as the frozen clock takes it (UTC)."""
    return datetime.fromisoformat(f"{day}T{hour:02d}:00").replace(tzinfo=MINSK).astimezone(UTC)


def due_day(request: Any) -> str:
    return request.due_at.astimezone(MINSK).date().isoformat()


async def clarify(bot: Harness, staff: Person, number: int, text: str) -> None:
    await staff.tap_data(f"v1req:{number}:clarify", card_of(bot, number))
    await staff.reply_to(staff.expect("что пользователь должен уточнить"), text)
    await bot.settle()


async def test_a_gdpr_extension_is_allowed_only_within_the_first_month(
    gdpr_bot: Harness, clock: FrozenClock
) -> None:
    ann = await onboarded(gdpr_bot, "Ann")
    bob = await onboarded(gdpr_bot, "Bob")
    staff = gdpr_bot.staff("Sam")
    clock.set(local("2027-01-01"))
    late = await file_erasure(gdpr_bot, ann)  # 30 days: due 31 January
    allowed = await file_erasure(gdpr_bot, bob)
    await gdpr_bot.settle()
    assert due_day(await stored(gdpr_bot, late)) == "2027-01-31"

    clock.set(local("2027-01-21"))  # day 20: both are asked to clarify, the clocks pause
    await clarify(gdpr_bot, staff, late, "Which account?")
    await clarify(gdpr_bot, staff, allowed, "Which account?")
    clock.set(local("2027-01-25"))  # Bob answers after 4 days: due 4 February
    await bob.reply_to(bob.inbox[-1], "The older one")
    bob.expect("now due by 04 Feb 2027")

    # Allowed: within the first month from receipt; the prompt shows the date it gives.
    clock.set(local("2027-01-28"))
    await gdpr_bot.settle()
    assert "⏳ Продлить" in labels(card_of(gdpr_bot, allowed))
    await staff.tap_data(f"v1req:{allowed}:extend", card_of(gdpr_bot, allowed))
    prompt = staff.expect("Влияние на срок: 04.02.2027 → 04.04.2027")
    await staff.reply_to(prompt, "Three archived systems")
    await gdpr_bot.settle()
    assert "extended the term for the answer to 04 Apr 2027" in bob.inbox[-1].text
    assert due_day(await stored(gdpr_bot, allowed)) == "2027-04-04"

    # The case: answered on day 40 (10 February, due 20 February), extended that day.
    clock.set(local("2027-02-10"))
    await ann.reply_to(ann.inbox[-1], "The older one")
    ann.expect("now due by 20 Feb 2027")
    await gdpr_bot.settle()
    card = card_of(gdpr_bot, late)
    assert "⏳ Продлить" not in labels(card)  # the card no longer offers it
    await staff.tap_data(f"v1req:{late}:extend", card)  # an older card's button
    alert = staff.expect("только в течение первого срока с момента получения, до 31.01.2027")
    assert alert.show_alert and "ничего не изменено" in alert.text
    assert staff.last.find("Влияние на срок") is None  # no prompt: nothing to type
    async with gdpr_bot.app.sessions() as session:
        desk = Desk(Repositories(session), gdpr_bot.app.clock, gdpr_bot.pack)
        request = await Repositories(session).requests.get(late)
        assert request is not None
        assert await desk.extend(request, staff.id, "Too late") is NoExtension.LATE
    request = await stored(gdpr_bot, late)
    assert (due_day(request), request.status) == ("2027-02-20", "in_progress")
    assert "extension" not in await kinds(gdpr_bot, late)
    assert not any("extended" in e.text for e in ann.inbox)


def test_an_extension_never_ends_beyond_three_months_plus_the_pause(tmp_path: Path) -> None:
    """A pack whose term is 30 days without the one-month cap (from 1 February: 3 March) plus
    two months would end 3 May; three months from receipt end on 1 May, plus the pause."""
    pack = load_pack(str(gdpr_only_pack(tmp_path)))  # the GDPR alone: 99-Z allows no extension
    thirty = Deadline(days=30, kind=DayKind.CALENDAR)
    [gdpr] = pack.laws
    law = gdpr.model_copy(update={"deadlines": {**gdpr.deadlines, RequestType.ERASURE: thirty}})
    deadlines = {**pack.deadlines, RequestType.ERASURE: thirty}
    pack = pack.model_copy(update={"laws": [law], "deadlines": deadlines})
    received = local("2027-02-01")
    original = datetime(2027, 3, 3, 23, 59, 59, tzinfo=MINSK)
    request: Any = SimpleNamespace(type="erasure", received_at=received, due_at=original)
    assert extended_due(pack, request).date().isoformat() == "2027-05-01"
    request.due_at = original + timedelta(days=5)  # paused five days: 8 March
    assert extended_due(pack, request).date().isoformat() == "2027-05-06"


# --- point 7: the disclosures right and its repeats ------------------------------------------


async def test_the_disclosures_right_is_listed_filed_answered_and_repeats_marked(
    bot: Harness, clock: FrozenClock
) -> None:
    ann = await onboarded(bot, "Ann")
    staff = bot.staff("Sam")
    await ann.send("/privacy")
    assert "information on disclosures" in ann.last.texts[-1]
    await ann.send("/consents")
    await ann.tap("Marketing")
    assert "information on disclosures" in ann.last.texts[-1]

    first = await file_access(bot, ann, "📤 Who was my data given to?")
    ann.expect("received: information on disclosures")
    await bot.settle()
    card = card_of(bot, first)
    assert "Заявление №1 — сведения о предоставлении данных" in card["text"]
    assert "Повторный" not in card["text"]
    await staff.tap_data(f"v1req:{first}:done", card)
    await bot.settle()
    assert "Request #1 (information on disclosures) is done" in ann.inbox[-1].text

    clock.set(datetime(2026, 12, 31, 20, 0, tzinfo=UTC))  # 23:00 in Minsk, still 2026
    second = await file_access(bot, ann, "📤 Who was my data given to?")
    await bot.settle()
    card = card_of(bot, second)
    assert (
        "Повторный запрос в этом календарном году (бесплатно — один раз в год): "
        "первый — №1 от 23.11.2026" in card["text"]
    )
    await staff.tap_data(f"v1req:{second}:done", card)  # served all the same
    await bot.settle()
    assert f"Request #{second} (information on disclosures) is done" in ann.inbox[-1].text

    clock.set(datetime(2026, 12, 31, 21, 30, tzinfo=UTC))  # 00:30 on 1 January in Minsk
    third = await file_access(bot, ann, "📤 Who was my data given to?")
    await bot.settle()
    assert "Повторный" not in card_of(bot, third)["text"]


async def test_the_hosting_desk_marks_repeat_disclosures_too(
    hosting_bot: Harness, clock: FrozenClock
) -> None:
    """The hosting operator is under Law 99-Z as well: art. 12's once-a-year mark applies."""
    ann = await onboarded(hosting_bot, "Ann")
    staff = hosting_bot.staff("Sam")
    first = await file_access(hosting_bot, ann, "📤 Who was my data given to?")
    await hosting_bot.settle()
    card = card_of(hosting_bot, first)
    assert "сведения о предоставлении данных" in card["text"] and "Повторный" not in card["text"]
    await staff.tap_data(f"v1req:{first}:done", card)
    await hosting_bot.settle()
    clock.set(datetime(2026, 12, 31, 20, 0, tzinfo=UTC))  # 23:00 in Minsk, still 2026
    second = await file_access(hosting_bot, ann, "📤 Who was my data given to?")
    await hosting_bot.settle()
    card = card_of(hosting_bot, second)
    assert (
        "Повторный запрос в этом календарном году (бесплатно — один раз в год): "
        f"первый — №{first} от 23.11.2026" in card["text"]
    )
    await staff.tap_data(f"v1req:{second}:done", card)  # served all the same
    await hosting_bot.settle()
    assert f"Request #{second} (information on disclosures) is done" in ann.inbox[-1].text


# --- point 9: one clarification by an agent, further ones by a DPO with a reason ---------------


async def test_an_agent_clarifies_once_a_dpo_again_with_a_reason(bot: Harness) -> None:
    assert need_for("request.clarify.start") is Need.DESK
    assert need_for("request.clarify_again.start") is Need.DPO
    assert need_for("request.clarify_again") is Need.DPO
    ann = await onboarded(bot, "Ann")
    dpo = bot.staff("Dana")  # a group administrator: a DPO
    agent = bot.staff("Alex", status="member")
    other = bot.staff("Olga", status="member")
    await dpo.send(f"/role {agent.id} agent")
    await dpo.send(f"/role {other.id} agent")
    seller = bot.staff("Mia", status="member")
    await dpo.send(f"/role {seller.id} marketing")
    number = await file_erasure(bot, ann)
    await bot.settle()
    await seller.tap_data(f"v1req:{number}:clarify", card_of(bot, number))
    assert seller.expect("Нужна роль: DPO или агент").text.startswith("Нужна роль")  # no limit

    # Two agents open the Clarify prompt; the first to answer clarifies, the other is refused.
    await other.tap_data(f"v1req:{number}:clarify", card_of(bot, number))
    slow = other.expect("что пользователь должен уточнить")
    await clarify(bot, agent, number, "Confirm the phone of the account")
    await other.reply_to(slow, "Which account?")
    other.expect("уточнение уже было: следующее — только DPO и с причиной")
    assert await kinds(bot, number) == ["clarify"]
    await ann.reply_to(ann.inbox[-1], "+375 29 000 00 00")
    await bot.settle()

    # The agent's second Clarify: refused, why, and audited; nothing changes.
    before = await stored(bot, number)
    await agent.tap_data(f"v1req:{number}:clarify", card_of(bot, number))
    alert = agent.expect("уточнение уже было: следующее — только DPO и с причиной")
    assert alert.show_alert and "Нужна роль: DPO. Ваша роль: агент" in alert.text
    await agent.send("Please clarify again")  # no prompt was opened
    await bot.settle()
    after = await stored(bot, number)
    assert (after.status, after.due_at) == (before.status, before.due_at)
    assert await kinds(bot, number) == ["clarify", "answer"]
    assert ("request.clarify_again.start", False) in await audit(bot, agent)
    assert sum("clarify" in e.text for e in ann.inbox) == 1

    # A forged "reclarify" button is no button at all.
    await dpo.tap_data(f"v1req:{number}:reclarify", card_of(bot, number))
    assert await kinds(bot, number) == ["clarify", "answer"]

    # The DPO: a reason first (staff only), then the clarification for the user.
    await dpo.tap_data(f"v1req:{number}:clarify", card_of(bot, number))
    prompt = dpo.expect("уже было уточнение, и каждое запускает срок")
    await dpo.reply_to(prompt, "The phone given belongs to another account")
    prompt = dpo.expect("что пользователь должен уточнить")
    await dpo.reply_to(prompt, "Send the phone of the account you use in the app")
    await bot.settle()
    assert "Send the phone of the account you use in the app" in ann.inbox[-1].text
    assert not any("belongs to another account" in e.text for e in ann.inbox)
    assert await kinds(bot, number) == ["clarify", "answer", "clarify_beyond", "clarify"]
    card = card_of(bot, number)["text"]
    assert f"Уточнение сверх лимита агента: DPO {dpo.id}" in card
    assert "Причина: The phone given belongs to another account" in card
    assert [a for a in await audit(bot, dpo) if "clarify" in a[0]] == [
        ("request.clarify_again.start", True),
        ("request.clarify_again.reason", True),
        ("request.clarify_again", True),
    ]
    assert (await stored(bot, number)).status == "waiting_user"


async def test_on_the_hosting_desk_a_further_pause_needs_a_dpo_and_a_reason(
    hosting_bot: Harness,
) -> None:
    """The hosting pack pauses the term for a clarification (GDPR practice): the agent's limit
    and the DPO's recorded reason hold there as on the 99-Z desk."""
    bot = hosting_bot
    ann = await onboarded(bot, "Ann")
    dpo = bot.staff("Dana")
    agent = bot.staff("Alex", status="member")
    await dpo.send(f"/role {agent.id} agent")
    number = await file_erasure(bot, ann)
    await bot.settle()
    await clarify(bot, agent, number, "Which account?")
    await ann.reply_to(ann.inbox[-1], "The one with legal@example.com")
    await bot.settle()

    before = await stored(bot, number)
    await agent.tap_data(f"v1req:{number}:clarify", card_of(bot, number))
    alert = agent.expect("уточнение уже было: следующее — только DPO и с причиной")
    assert alert.show_alert and "Нужна роль: DPO. Ваша роль: агент" in alert.text
    after = await stored(bot, number)
    assert (after.status, after.due_at) == (before.status, before.due_at)

    await dpo.tap_data(f"v1req:{number}:clarify", card_of(bot, number))
    prompt = dpo.expect("уже было уточнение, и каждое приостанавливает срок")
    assert "ответьте причиной: пользователю её не отправляют" in prompt.text
    await dpo.reply_to(prompt, "Two accounts share that address")
    prompt = dpo.expect("что пользователь должен уточнить")
    await dpo.reply_to(prompt, "Send the client number of the account")
    await bot.settle()
    assert "Send the client number of the account" in ann.inbox[-1].text
    assert not any("share that address" in e.text for e in ann.inbox)
    assert await kinds(bot, number) == ["clarify", "answer", "clarify_beyond", "clarify"]
    card = card_of(bot, number)["text"]
    assert f"Уточнение сверх лимита агента: DPO {dpo.id}" in card
    assert "Причина: Two accounts share that address" in card
    assert (await stored(bot, number)).status == "waiting_user"


async def test_the_migration_gives_older_unfounded_refusals_their_ground(tmp_path: Path) -> None:
    """Before grounds were pack data, a refusal as manifestly unfounded or excessive was only a
    message kind (`refusal_unfounded`): the migration stores its ground, `unfounded`."""
    from alembic import command
    from sqlalchemy import text

    from storage import migrate
    from storage.db import create_engine
    from tests.test_storage import MASTER

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/old.db", tmp_path / "old.db")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(
                lambda c: command.upgrade(migrate.alembic_config(c, MASTER), "0014_breach_notices")
            )
            for statement in (
                "INSERT INTO users (id, language, blocked_bot, created_at) "
                "VALUES (1, 'en', 0, '2026-01-01')",
                *(
                    "INSERT INTO requests (id, user_id, type, details, status, verification, "
                    f"received_at, due_at, user_unreachable) VALUES ({n}, 1, 'access', '{{}}', "
                    "'refused', 'telegram_id', '2026-01-01', '2026-01-02', 0)"
                    for n in (1, 2)
                ),
                "INSERT INTO request_messages (request_id, at, author, kind, text) "
                "VALUES (1, '2026-01-01', 'staff', 'refusal_unfounded', 'x')",
                "INSERT INTO request_messages (request_id, at, author, kind, text) "
                "VALUES (2, '2026-01-01', 'staff', 'refusal', 'x')",
            ):
                await connection.execute(text(statement))
        await migrate.upgrade(engine, MASTER)
        async with engine.begin() as connection:
            rows = await connection.execute(
                text("SELECT id, refusal_ground FROM requests ORDER BY id")
            )
            assert [tuple(r) for r in rows] == [(1, "unfounded"), (2, None)]
    finally:
        await engine.dispose()
