"""Files on requests both ways: copied under the card and to the user, limits and refusals, only
IDs, type and size in the database, in the export, and redacted in the group on erasure."""

from __future__ import annotations

import json

from sqlalchemy import select

from storage.models import RequestAttachment
from tests.fake_telegram import Event, FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness, Person
from tests.test_consents import onboarded
from tests.test_requests import erasure_on_the_desk, stored

MB = 1024 * 1024


async def attachments(bot: Harness) -> list[RequestAttachment]:
    async with bot.app.sessions() as session:
        return list(await session.scalars(select(RequestAttachment).order_by(RequestAttachment.id)))


def copies(bot: Harness, chat_id: int) -> list[Event]:
    return [e for e in bot.fake.events if e.kind == "copy" and e.chat_id == chat_id]


async def file_in_russian(person: Person) -> None:
    await person.send("/rights")
    await person.tap("🗑 Удалить мои данные")
    if person.last.find("контакт"):
        await person.send_contact("+375291234567", user_id=person.id)
    await person.tap("Пропустить")
    await person.tap("✅ Отправить заявление")


async def asked(bot: Harness, staff: Person, person: Person, question: str) -> Event:
    """Staff ask for a clarification; the question as the user received it."""
    await staff.tap("❓ Вопрос")
    prompt = staff.expect("ответьте на это сообщение вопросом")
    await staff.reply_to(prompt, question)
    await bot.settle()
    return person.inbox[-1]


async def test_files_both_ways_threaded_under_the_card(bot: Harness) -> None:
    ann, staff, number, card = await erasure_on_the_desk(bot)
    question = await asked(bot, staff, ann, "Please send a document proving who you are")
    assert (await stored(bot, number)).status == "waiting_user"

    await ann.send_document("passport.pdf", caption="my passport", reply_to=question)
    ann.expect("📎 The file is with the operator, with request #1.")
    assert (await stored(bot, number)).status == "in_progress"  # the file is the answer
    await bot.settle()
    [copy] = copies(bot, ADMIN_CHAT_ID)
    assert copy.text == "📎 Ann по заявлению №1: документ, 0,1 МБ\nmy passport"
    assert copy.raw["reply_parameters"]["message_id"] == card.message_id  # under the card
    assert bot.fake.messages[(ADMIN_CHAT_ID, copy.message_id)]["document"]["file_name"] == (
        "passport.pdf"
    )

    await staff.send_photo(caption="Your form, filled in", reply_to=copy)
    queued = staff.expect("В очереди для пользователя")
    await bot.settle()
    confirmation = bot.fake.messages[(ADMIN_CHAT_ID, queued.message_id)]["text"]
    assert "Отправлено пользователю" in confirmation  # once the user has it
    [to_ann] = copies(bot, ann.id)
    assert to_ann.text.startswith("📎 The operator about request #1 (erasure).")
    assert to_ann.text.endswith("Your form, filled in")
    assert "photo" in bot.fake.messages[(ann.id, to_ann.message_id)]
    await ann.send_photo(reply_to=to_ann)  # a reply to the operator's file reaches the card too
    ann.expect("with request #1")
    await bot.settle()
    assert len(copies(bot, ADMIN_CHAT_ID)) == 2

    rows = await attachments(bot)
    assert [(a.author, a.kind, a.size, a.status) for a in rows] == [
        ("user", "document", 120_000, "relayed"),
        ("staff", "photo", 50_000, "relayed"),
        ("user", "photo", 50_000, "relayed"),
    ]
    stored_values = json.dumps([vars(a) for a in rows], default=str)
    assert "d-passport.pdf" not in stored_values and "p1" not in stored_values  # no file IDs

    await ann.send("/export")
    [document] = [e for e in ann.last.events if e.kind == "document"]
    export = json.loads(document.raw["content"])
    assert [(a["author"], a["type"], a["size"]) for a in export["requests"][0]["attachments"]] == [
        ("user", "document", 120_000),
        ("staff", "photo", 50_000),
        ("user", "photo", 50_000),
    ]


async def test_staff_reply_with_a_document_reaches_the_user_as_that_document(
    bot: Harness,
) -> None:
    ann, staff, _, card = await erasure_on_the_desk(bot)
    await staff.send_document("answer.pdf", caption="Our answer", reply_to=card)
    staff.expect("В очереди для пользователя")
    await bot.settle()
    [to_ann] = copies(bot, ann.id)
    assert to_ann.text.startswith("📎 The operator about request #1 (erasure).")
    assert to_ann.text.endswith("Our answer")
    sent = bot.fake.messages[(ann.id, to_ann.message_id)]
    assert sent["document"]["file_name"] == "answer.pdf"
    assert [(a.author, a.kind, a.size) for a in await attachments(bot)] == [
        ("staff", "document", 120_000)
    ]


async def test_what_cannot_be_relayed_is_refused(bot: Harness) -> None:
    boris = await onboarded(bot, "Борис", "ru")
    staff = bot.staff("Sam")
    await file_in_russian(boris)
    await bot.settle()
    [card] = bot.cards()
    question = await asked(bot, staff, boris, "Пришлите документ")

    await boris.send_document("huge.zip", size=25 * MB, reply_to=question)
    boris.expect("Файл больше 20 МБ")
    await boris.send_document("secret.pdf", protected=True)
    boris.expect("защищено от копирования")
    await boris.send_sticker()
    boris.expect("только документы и фотографии")
    await staff.send_sticker(reply_to=card)
    staff.expect("только документы и фотографии")
    await bot.settle()
    assert await attachments(bot) == []

    await boris.send_photo(caption="x" * 2000)  # still waiting: the photo is the answer
    boris.expect("📎 Файл передан оператору вместе с заявлением №1.")
    await bot.settle()
    [copy] = copies(bot, ADMIN_CHAT_ID)
    assert len(copy.text) <= 1024 and copy.text.endswith("…")  # the caption fits Telegram's limit


async def test_a_file_telegram_will_not_copy_is_reported(bot: Harness, fake: FakeTelegram) -> None:
    ann, staff, _, _ = await erasure_on_the_desk(bot)
    question = await asked(bot, staff, ann, "Proof, please")
    fake.fail("copyMessage", description="Bad Request: message to copy not found")
    await ann.send_document(reply_to=question)
    await bot.settle()
    assert "could not be passed to the operator" in ann.inbox[-1].text
    [row] = await attachments(bot)
    assert row.status == "failed"


async def test_erasure_removes_relayed_files_from_the_group(
    bot: Harness, fake: FakeTelegram
) -> None:
    ann, staff, number, _ = await erasure_on_the_desk(bot)
    question = await asked(bot, staff, ann, "Proof, please")
    await ann.send_document(reply_to=question)
    await ann.send_photo(reply_to=question)
    await bot.settle()
    first, second = copies(bot, ADMIN_CHAT_ID)
    fake.fail(
        "deleteMessage", chat_id=ADMIN_CHAT_ID, description="Bad Request: message can't be deleted"
    )
    fake.fail("editMessageCaption", chat_id=ADMIN_CHAT_ID, description="Bad Request: too old")

    await staff.tap_data(
        f"v1req:{number}:done", bot.fake.messages[(ADMIN_CHAT_ID, bot.cards()[0].message_id)]
    )
    await bot.settle()
    assert (ADMIN_CHAT_ID, second.message_id) not in fake.messages  # deleted
    assert (ADMIN_CHAT_ID, first.message_id) in fake.messages  # Telegram refused both ways
    leftover = [e for e in fake.events if "Telegram не дал удалить 1 сообщение" in e.text]
    assert leftover and str(first.message_id) in leftover[0].text
    assert await attachments(bot) == []


async def test_files_sent_while_filing_go_with_the_request(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    await ann.send("/rights")
    await ann.tap("🗑 Erase my data")
    if ann.last.find("share your contact"):
        await ann.send_contact("+375291234567", user_id=ann.id)
    await ann.send_document("contract.pdf", caption="the contract")
    ann.expect("📎 The file is added and goes with the request (1 file so far).")
    await ann.send("I cancelled the contract")
    ann.expect("You can add documents or photos now")
    await ann.send_photo()
    ann.expect("(2 files so far)")
    await ann.tap("✅ Send the request")
    received = ann.expect("Request #1 received")
    await bot.settle()
    [card] = bot.cards()
    first, second = copies(bot, ADMIN_CHAT_ID)
    assert first.text == "📎 Ann по заявлению №1: документ, 0,1 МБ\nthe contract"
    assert first.raw["reply_parameters"]["message_id"] == card.message_id
    assert first.message_id > card.message_id and second.message_id > first.message_id

    await ann.send_document("more.pdf", reply_to=received)  # a reply to "received" attaches
    ann.expect("📎 The file is with the operator, with request #1.")
    await bot.settle()
    assert len(copies(bot, ADMIN_CHAT_ID)) == 3
    await ann.send_document("lost.pdf")  # nothing waits and it answers nothing: not kept
    ann.expect_not("with the operator")
    assert len(await attachments(bot)) == 3
