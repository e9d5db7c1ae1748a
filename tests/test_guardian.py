"""Under-16 users and their legal representative's one-time link."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.core.clock import FrozenClock
from storage.models import GuardianConfirmation, GuardianLink
from tests.fake_telegram import BOT_USERNAME
from tests.kit import Harness, Person


async def minor_with_link(bot: Harness, name: str = "Kid", lang: str = "en") -> tuple[Person, str]:
    kid = bot.user(name, lang=lang)
    await kid.send("/start")
    await kid.tap("Under 16" if lang == "en" else "Младше 16 лет")
    intro = kid.expect(f"https://t.me/{BOT_USERNAME}?start=rep_")
    link = next(word for word in intro.text.split() if word.startswith("https://t.me/"))
    return kid, link.split("?start=")[1]


async def confirmations(bot: Harness) -> list[GuardianConfirmation]:
    async with bot.app.sessions() as session:
        return list((await session.scalars(select(GuardianConfirmation))).all())


async def test_minor_gets_link_and_representative_confirms(
    bot: Harness, clock: FrozenClock
) -> None:
    kid, payload = await minor_with_link(bot)
    kid.expect("optional consents (such as marketing messages) are given for you only by")
    menu = kid.expect("What would you like to do?")
    assert "Your legal representative has not confirmed yet" in menu.text
    assert "👪 Link for my legal representative" in [b["text"] for b in menu.buttons()]

    mum = bot.user("Mum", lang="en")
    await mum.send(f"/start {payload}")
    mum.expect("are you 16 or older?")
    await mum.tap("I am 16 or older")
    mum.expect("legal representative (parent, adoptive parent, guardian or custodian) of Kid")
    await mum.tap("✅ I am the legal representative")
    mum.expect("Recorded that you are the legal representative")
    await bot.settle()  # the minor is told through the outbox
    told = kid.inbox[-1]
    assert "Your legal representative confirmed" in told.text

    [confirmation] = await confirmations(bot)
    assert (confirmation.minor_id, confirmation.guardian_id) == (kid.id, mum.id)
    assert confirmation.policy_version == bot.pack.policy.version
    assert confirmation.confirmed_at == clock.now()

    await kid.send("/start")
    menu = kid.expect("What would you like to do?")
    assert "Your legal representative confirmed on" in menu.text
    assert "👪 Link for my legal representative" not in [b["text"] for b in menu.buttons()]

    # The representative is now known to the bot as of age; their own /start skips the gate.
    await mum.send("/start")
    mum.expect("Privacy notice of")
    mum.expect_not("How old are you?")


async def test_representative_in_russian(bot: Harness) -> None:
    kid, payload = await minor_with_link(bot, "Петя", lang="ru")
    kid.expect("Отправьте ему эту ссылку")
    papa = bot.user("Папа", lang="ru")
    await papa.send(f"/start {payload}")
    papa.expect("вам уже есть 16 лет?")
    await papa.tap("Мне 16 лет или больше")
    papa.expect("представитель (родитель, усыновитель, опекун или попечитель) пользователя Петя")
    await papa.tap("✅ Я законный представитель")
    papa.expect("Записано, что вы — законный представитель")
    await bot.settle()
    assert "Ваш законный представитель подтвердил свои полномочия" in kid.inbox[-1].text


async def test_link_works_once(bot: Harness) -> None:
    _, payload = await minor_with_link(bot)
    mum = bot.user("Mum")
    await mum.send(f"/start {payload}")
    await mum.tap("I am 16 or older")
    await mum.tap("✅ I am the legal representative")
    await mum.tap_data("v1rep:confirm")  # double tap
    mum.expect("This button is no longer active")

    stranger = bot.user("Stranger")
    await stranger.send(f"/start {payload}")
    stranger.expect("This link has already been used")
    assert len(await confirmations(bot)) == 1


async def test_link_expires_after_seven_days(bot: Harness, clock: FrozenClock) -> None:
    _, payload = await minor_with_link(bot)
    clock.advance(timedelta(days=7, seconds=1))
    mum = bot.user("Mum")
    await mum.send(f"/start {payload}")
    mum.expect("This link has expired")
    assert await confirmations(bot) == []


async def test_link_expiring_between_steps_is_refused(bot: Harness, clock: FrozenClock) -> None:
    _, payload = await minor_with_link(bot)
    mum = bot.user("Mum")
    await mum.send(f"/start {payload}")
    await mum.tap("I am 16 or older")
    clock.advance(timedelta(days=8))
    await mum.tap("✅ I am the legal representative")
    mum.expect("This link has expired")
    assert await confirmations(bot) == []


async def test_unknown_and_own_links(bot: Harness) -> None:
    kid, payload = await minor_with_link(bot)
    mum = bot.user("Mum")
    await mum.send("/start rep_not-a-real-token")
    mum.expect("This link is not valid")
    await kid.send(f"/start {payload}")
    kid.expect("This link is for your legal representative")
    assert await confirmations(bot) == []


async def test_a_new_link_replaces_the_old_one(bot: Harness) -> None:
    kid, old = await minor_with_link(bot)
    await kid.tap("👪 Link for my legal representative")
    fresh = kid.expect("Here is a new link")
    new = fresh.text.split("?start=")[1].split()[0]
    assert new != old
    mum = bot.user("Mum")
    await mum.send(f"/start {old}")
    mum.expect("This link has expired")
    await mum.send(f"/start {new}")
    mum.expect("are you 16 or older?")


async def test_representative_under_16_and_cancel_record_nothing(bot: Harness) -> None:
    _, payload = await minor_with_link(bot)
    sibling = bot.user("Sibling")
    await sibling.send(f"/start {payload}")
    await sibling.tap("I am under 16")
    sibling.expect("Only a person aged 16 or older")

    mum = bot.user("Mum")
    await mum.send(f"/start {payload}")
    await mum.tap("Cancel")
    mum.expect("Nothing was recorded")
    await mum.send(f"/start {payload}")  # the link still works
    await mum.tap("I am 16 or older")
    await mum.send("some text instead of a button")
    mum.expect("Please answer with the buttons")
    await mum.tap("✅ I am the legal representative")
    mum.expect("Recorded that you are the legal representative")
    assert len(await confirmations(bot)) == 1


async def test_a_minor_cannot_be_a_representative(bot: Harness) -> None:
    _, payload = await minor_with_link(bot, "Kid")
    other_kid, _ = await minor_with_link(bot, "Other kid")
    await other_kid.send(f"/start {payload}")
    other_kid.expect("you cannot act as a legal representative")


async def test_representative_survives_a_restart(bot: Harness) -> None:
    _, payload = await minor_with_link(bot)
    mum = bot.user("Mum")
    await mum.send(f"/start {payload}")
    await mum.tap("I am 16 or older")
    await bot.restart()
    await mum.tap("✅ I am the legal representative")
    mum.expect("Recorded that you are the legal representative")


async def test_only_the_token_hash_is_stored(bot: Harness) -> None:
    _, payload = await minor_with_link(bot)
    async with bot.app.sessions() as session:
        [link] = (await session.scalars(select(GuardianLink))).all()
    token = payload.removeprefix("rep_")
    assert token not in link.token_hash and len(token) >= 32


async def test_adult_needs_no_link(bot: Harness) -> None:
    ann = bot.user("Ann")
    await ann.send("/start")
    await ann.tap("16 or older")
    await ann.tap_data("v1menu:guardian")
    ann.expect("You do not need a legal representative's confirmation")


async def links(bot: Harness) -> list[tuple[int, object, object, object]]:
    async with bot.app.sessions() as session:
        rows = await session.scalars(select(GuardianLink).order_by(GuardianLink.id))
        return [(link.id, link.created_at, link.expires_at, link.used_at) for link in rows]


async def test_refused_grants_keep_the_link_sent_and_the_parent_confirms_with_it(
    bot: Harness, clock: FrozenClock
) -> None:
    kid, first = await minor_with_link(bot)
    before = await links(bot)
    clock.advance(timedelta(days=2))
    await kid.send("/consents")
    await kid.tap("🔒 Marketing messages")  # a locked consent
    refused = kid.expect("is still waiting for your representative")
    assert "The link you got on 23 Nov 2026, 12:00" in refused.text
    assert "until 30 Nov 2026, 12:00" in refused.text  # its expiry, unchanged
    assert [b["text"] for b in refused.buttons()] == ["🔗 New link for my representative"]
    kid.expect_not("?start=rep_")  # no new link
    await kid.tap("🔒 Marketing messages")  # again
    await kid.tap_data("v1con:i:model_training:0")  # the information screen
    await kid.tap_data("v1con:g:marketing:0")  # I agree
    kid.expect("is still waiting for your representative")
    assert await links(bot) == before

    mum = bot.user("Mum")
    await mum.send(f"/start {first}")  # the link the parent was sent days ago
    await mum.tap("I am 16 or older")
    await mum.tap("✅ I am the legal representative")
    mum.expect("Recorded that you are the legal representative")
    [confirmation] = await confirmations(bot)
    assert (confirmation.minor_id, confirmation.guardian_id) == (kid.id, mum.id)

    await kid.tap("🔒 Marketing messages")  # after the confirmation: no link, who to ask
    kid.expect("Your legal representative confirmed their authority on 25 Nov 2026, 12:00")
    assert kid.last.events[-1].buttons() == []


async def test_only_the_new_link_button_voids_the_old_link_and_says_so(
    bot: Harness, clock: FrozenClock
) -> None:
    kid, old = await minor_with_link(bot)
    await kid.send("/consents")
    await kid.tap("🔒 Marketing messages")
    await kid.tap("🔗 New link for my representative")
    fresh = kid.expect("Here is a new link. The old one no longer works.")
    new = fresh.text.split("?start=")[1].split()[0]
    mum = bot.user("Mum")
    await mum.send(f"/start {old}")
    mum.expect("This link has expired")
    await mum.send(f"/start {new}")
    mum.expect("are you 16 or older?")

    # Once no link works, a refused grant says so; the button gets one (nothing to void).
    clock.advance(timedelta(days=7, seconds=1))
    await kid.tap("🔒 Marketing messages")
    kid.expect("You have no link for your representative that still works")
    await kid.tap("🔗 New link for my representative")
    kid.expect("Send them this link")
    kid.expect_not("The old one no longer works")


async def test_no_forged_button_changes_guardian_links(bot: Harness) -> None:
    kid, first = await minor_with_link(bot)
    other, _ = await minor_with_link(bot, "Other")
    ann = bot.user("Ann")
    await ann.send("/start")
    await ann.tap("16 or older")
    before = await links(bot)
    forged = [
        f"v1con:{action}:{purpose}:{minor}"
        for action in ("g", "i", "x", "w", "l", "h")
        for purpose in ("marketing", "model_training", "nope", "-")
        for minor in (0, kid.id, other.id, 2**53 - 1)
    ]
    for person in (kid, other, ann):
        for data in forged:
            await person.tap_data(data)
        for data in ("v1rep:confirm", "v1rep:adult", "v1rep:minor", "v1rep:cancel"):
            await person.tap_data(data)
    await ann.tap_data("v1menu:guardian")  # an adult asking for a link gets none
    ann.expect("You do not need a legal representative's confirmation")
    in_group = kid.in_chat(-100777)
    await in_group.tap_data("v1con:x:marketing:0")
    assert await links(bot) == before

    mum = bot.user("Mum")
    await mum.send(f"/start {first}")
    await mum.tap("I am 16 or older")
    await mum.tap("✅ I am the legal representative")
    mum.expect("Recorded that you are the legal representative")
