"""Answer templates: staff add, list and delete them (ru and en), pick one from the card, and the
user gets it in their language with the placeholders filled; the audit log names the template."""

from __future__ import annotations

from sqlalchemy import select

from bot.domain.templates import parse
from storage.models import AuditEntry, RequestMessage
from tests.kit import ADMIN_CHAT_ID, Harness
from tests.test_consents import onboarded
from tests.test_requests import file_erasure

ADD = """/templates add Need ID
ru: Заявление №{number} ({type}): пришлите, пожалуйста, скан паспорта. Срок — {due}.
Спасибо!
en: Request #{number} ({type}): please send a scan of your ID. Due by {due}.
Thank you!"""


def test_parse_needs_a_name_and_both_languages() -> None:
    draft = parse("Hello\nru: Привет\nкак дела\nen: Hi")
    assert draft is not None and draft.name == "Hello"
    assert draft.texts == {"ru": "Привет\nкак дела", "en": "Hi"}
    assert parse("Hello\nru: Привет") is None
    assert parse("\nru: Привет\nen: Hi") is None
    assert parse("Hello\nru: Привет\nen: " + "x" * 3001) is None


async def test_templates_from_the_card_in_each_users_language(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    boris = await onboarded(bot, "Борис", "ru")
    sam = bot.staff("Sam")
    first = await file_erasure(bot, ann)
    await boris.send("/rights")
    await boris.tap("🗑 Удалить мои данные")
    if boris.last.find("контакт"):
        await boris.send_contact("+375291234567", user_id=boris.id)
    await boris.tap("Пропустить")
    await boris.tap("✅ Отправить заявление")
    await bot.settle()
    cards = bot.cards()

    await sam.tap_data(
        f"v1req:{first}:tpl", bot.fake.messages[(ADMIN_CHAT_ID, cards[0].message_id)]
    )
    assert sam.expect("Шаблонов пока нет").show_alert
    await sam.send("/templates add Broken\nru: только по-русски")
    sam.expect("Добавить: /templates add Название")
    sam.expect("{number} (номер заявления)")
    await sam.send(ADD)
    sam.expect("Шаблон №1 «Need ID» сохранён")
    await sam.send("/templates")
    listing = sam.expect("Шаблоны ответов")
    assert "№1 Need ID" in listing.text and "en: Request #{number}" in listing.text

    confirmations: list[int] = []
    for card, number in ((cards[0], first), (cards[1], first + 1)):
        card_message = bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]
        labels = [b["text"] for row in card_message["reply_markup"]["inline_keyboard"] for b in row]
        assert "📋 Шаблон" in labels
        await sam.tap_data(f"v1req:{number}:tpl", card_message)
        picker = sam.expect("Какой шаблон отправить")
        assert [b["text"] for b in picker.buttons()] == ["Need ID", "✖ Отмена"]
        await sam.tap("Need ID")
        queued = sam.expect("Шаблон «Need ID» в очереди")  # not "sent" before the user has it
        confirmations.append(queued.message_id)
    await bot.settle()
    for message_id in confirmations:
        done = bot.fake.messages[(ADMIN_CHAT_ID, message_id)]["text"]
        assert "Отправлено пользователю" in done  # once delivered
    assert any(
        "Request #1 (erasure): please send a scan of your ID. Due by 08 Dec 2026" in e.text
        for e in ann.inbox
    )
    assert any(
        "Заявление №2 (удаление): пришлите, пожалуйста, скан паспорта. Срок — 08.12.2026" in e.text
        for e in boris.inbox
    )

    async with bot.app.sessions() as session:
        used = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "template.use"))
        )
        said = list(await session.scalars(select(RequestMessage.kind)))
    assert [a.subject for a in used if a.allowed] == [
        "request:1:template:1",
        "request:2:template:1",
    ]
    assert said.count("reply") == 2

    await sam.send("/templates delete 7")
    sam.expect("Нет такого шаблона")
    await sam.send("/templates delete 1")
    sam.expect("Шаблон №1 удалён")
    await sam.tap_data("v1tpl:1:1")  # an old picker button
    sam.expect("больше не действует")


async def test_only_desk_roles_use_templates(bot: Harness) -> None:
    sam = bot.staff("Sam")
    mia = bot.staff("Mia", status="member")
    await sam.send(f"/role {mia.id} marketing")
    await mia.send(ADD)
    mia.expect("доступно роли: DPO или агент")
    await mia.tap_data("v1tpl:1:1")
    assert mia.expect("Нужна роль: DPO или агент").show_alert
