"""The admin group lost and found without losing a card: the bot removed from the group (or the
group gone, or a right taken away) is one state of the desk, "staff unreachable since T";
items to staff wait for it in order and are never failed for it, owners are told once,
/healthz answers 503, users are served; the bot added back (a `my_chat_member` update) posts
every card filed meanwhile, oldest first, each once. And a burst of cards is paced under
Telegram's limit of about 20 messages a minute in one group."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from bot.core.clock import FrozenClock
from bot.delivery.outbox.pacing import SLOT
from bot.domain.staff_reach import KEY
from storage.enums import STAFF_KINDS, OutboxKind
from storage.models import BotState, OutboxItem, Request
from storage.repositories import Repositories
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness
from tests.packs import write_complete_99z
from tests.test_consents import onboarded
from tests.test_delivery import card_numbers, file_directly
from tests.test_requests import file_erasure

OWNERS = (7_000_001, 7_000_002)
LOST = "cannot reach its admin group"
FOUND = "reaches its admin group again"


@pytest.fixture
async def desk(fake: FakeTelegram, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Harness]:
    """The bot with two owners, paced as in production (STAFF_RATE 20); its workers are driven
    by the test (outbox passes, the clock)."""
    for owner in OWNERS:
        fake.add_private_chat({"id": owner, "first_name": "Owner"})
    # The pack as an operator has filled it in, with the coming year's working-day transfers:
    # no start-up note of fields to fill in and no calendar warning (a restart while the group
    # is away, on a later day, would queue them again).
    pack = str(write_complete_99z(tmp_path))
    (tmp_path / "calendars").mkdir()
    (tmp_path / "calendars" / "BY.toml").write_text('country = "BY"\nyears = [2027]\n', "utf-8")
    harness = Harness(
        fake,
        tmp_path,
        pack=pack,
        clock=clock,
        owner_ids=list(OWNERS),
        staff_rate=20,
        admin_locale="en",
    )
    await harness.start()
    await stop_workers(harness)
    # These tests count only the items to staff they make: nothing the start queued.
    async with harness.app.sessions() as session:
        await session.execute(delete(OutboxItem))
        # Nor the group's send slot they took (a worker may have posted before it stopped).
        await session.execute(delete(BotState).where(BotState.key == SLOT))
        await session.commit()
    yield harness
    await harness.stop()


async def stop_workers(bot: Harness) -> None:
    await bot.app.outbox.stop()
    await bot.app.reminders.stop()


def to_owner(bot: Harness, owner: int, fragment: str) -> list[str]:
    return [
        e.text
        for e in bot.fake.events
        if e.chat_id == owner and e.kind == "message" and fragment in e.text
    ]


def admin_posts(bot: Harness) -> int:
    return sum(
        1
        for method, params in bot.fake.calls
        if method == "sendMessage" and str(params.get("chat_id")) == str(ADMIN_CHAT_ID)
    )


async def staff_items(bot: Harness) -> list[OutboxItem]:
    async with bot.app.sessions() as session:
        rows = await session.scalars(
            select(OutboxItem).where(OutboxItem.kind.in_(STAFF_KINDS)).order_by(OutboxItem.id)
        )
        return list(rows)


async def state(bot: Harness) -> str | None:
    async with bot.app.sessions() as session:
        return await Repositories(session).state.get(KEY)


async def drive(bot: Harness, clock: FrozenClock, seconds: int) -> None:
    """The outbox's passes over `seconds` of the clock, one a second."""
    for _ in range(seconds):
        await bot.app.outbox.drain(bot.app.bot)
        clock.advance(timedelta(seconds=1))


async def until_posted(bot: Harness, clock: FrozenClock, numbers: list[int]) -> timedelta:
    """Drive the outbox second by second until every card of `numbers` is posted; how long
    that took on the clock."""
    start = clock.now()
    for _ in range(24 * 3600):
        await bot.app.outbox.drain(bot.app.bot)
        if set(card_numbers(bot)) >= set(numbers):
            return clock.now() - start
        clock.advance(timedelta(seconds=1))
    raise AssertionError("the cards were never posted")


@pytest.mark.parametrize("restart", [False, True], ids=["one-process", "restart-while-away"])
async def test_removed_for_48_hours_then_every_card_arrives_once_in_order(
    desk: Harness, clock: FrozenClock, caplog: pytest.LogCaptureFixture, restart: bool
) -> None:
    caplog.set_level("INFO")
    people = [await onboarded(desk, f"P{i}") for i in range(20)]
    await desk.bot_status("kicked", was="administrator")  # someone removed the bot
    numbers = []
    for hour in range(48):
        if hour % 12 == 0 and hour // 12 < 4:
            for person in people[hour // 12 * 5 : hour // 12 * 5 + 5]:
                numbers.append(await file_erasure(desk, person, f"filed at hour {hour}"))
                person.expect("received: erasure")  # users are served meanwhile
        if restart and hour == 24:
            await desk.restart()  # the start-up check finds the group still away
            await stop_workers(desk)
        await desk.app.outbox.drain(desk.app.bot)
        clock.advance(timedelta(hours=1))
    await desk.app.outbox.drain(desk.app.bot)

    assert desk.cards() == [] and len(numbers) == 20
    items = await staff_items(desk)
    assert items and all(i.status == "pending" for i in items)  # waiting, none failed
    # One try decides for all: not one call per item each time the backoff comes round.
    assert admin_posts(desk) <= 2 * 48
    for owner in OWNERS:  # told once, however long it lasts and however many items wait
        [text] = to_owner(desk, owner, LOST)
        assert "removed from the group" in text and "add the bot back" in text
    assert caplog.text.count("Staff unreachable:") == 1  # logged once, not per item
    health = await desk.app.metrics.health()
    assert not health.ok and health.reason.startswith("staff unreachable since")
    assert "kicked" in health.reason and "(172800 s)" in health.reason
    assert b"privacy_desk_staff_unreachable 1.0" in await desk.app.metrics.render()
    async with desk.app.sessions() as session:
        statuses = set(await session.scalars(select(Request.status)))
    assert statuses == {"received"}  # nobody is told anything false

    await desk.bot_status("administrator", was="kicked")  # added back
    # Every item to staff is due at once, not after the backoff.
    assert all(i.next_attempt_at <= clock.now() for i in await staff_items(desk))
    took = await until_posted(desk, clock, numbers)
    assert took <= timedelta(minutes=1)
    assert card_numbers(desk) == dict.fromkeys(numbers, 1)  # none twice
    assert list(card_numbers(desk)) == sorted(numbers)  # oldest first
    first = next(e for e in desk.cards() if f"#{numbers[0]} " in e.text)
    assert "Posted late: this request was received on 23 Nov 2026" in first.text
    for owner in OWNERS:
        assert len(to_owner(desk, owner, FOUND)) == 1 and len(to_owner(desk, owner, LOST)) == 1
    assert (await desk.app.metrics.health()).ok
    assert b"privacy_desk_staff_unreachable 0.0" in await desk.app.metrics.render()
    assert "failed" not in caplog.text.lower()


@pytest.mark.parametrize(
    ("status", "description", "reason"),
    [
        (403, "Forbidden: bot was kicked from the supergroup chat", "kicked"),
        (403, "Forbidden: bot is not a member of the supergroup chat", "not_member"),
        (400, "Bad Request: chat not found", "chat_not_found"),
        (400, "Bad Request: group chat was deactivated", "deactivated"),
        (
            400,
            "Bad Request: not enough rights to send text messages to the chat",
            "right:can_send_messages",
        ),
        (403, "Forbidden: CHAT_WRITE_FORBIDDEN", "right:can_send_messages"),
    ],
)
async def test_every_way_of_losing_the_group_is_the_same_state(
    desk: Harness, clock: FrozenClock, status: int, description: str, reason: str
) -> None:
    ann = await onboarded(desk, "Ann")
    now = clock.now()
    async with desk.app.sessions() as session:
        repo = Repositories(session)
        first = (await repo.outbox.add(kind="to_admin", text="first", now=now)).id
        await repo.outbox.add(kind="to_admin", text="second, same lane", now=now)
        await repo.outbox.add(kind="to_user", user_id=ann.id, text="to Ann meanwhile", now=now)
        await repo.commit()
    desk.fake.fail(
        "sendMessage", chat_id=ADMIN_CHAT_ID, status=status, description=description, times=10**9
    )
    for _ in range(5):
        await desk.app.outbox.drain(desk.app.bot)
        clock.advance(timedelta(minutes=20))
    assert "to Ann meanwhile" in ann.inbox[-1].text  # users keep being served
    stored = await state(desk)
    assert stored is not None and f'"reason": "{reason}"' in stored
    assert all(i.status == "pending" for i in await staff_items(desk))
    health = await desk.app.metrics.health()
    assert not health.ok and health.reason.endswith(reason)
    [told] = to_owner(desk, OWNERS[0], LOST)
    if reason.startswith("right:"):
        assert "lacks the right can_send_messages" in told  # the missing right is named

    desk.fake.failures.clear()
    await desk.bot_status("administrator", was="member")  # the owner fixed it
    await drive(desk, clock, 10)
    texts = [e.text for e in desk.fake.events if e.chat_id == ADMIN_CHAT_ID]
    assert texts == ["first", "second, same lane"]  # in order, each once
    assert await state(desk) is None and len(to_owner(desk, OWNERS[0], FOUND)) == 1
    async with desk.app.sessions() as session:
        item = await Repositories(session).outbox.get(first)
    assert item is not None and item.status == "sent"


async def test_a_demoted_bot_names_the_missing_right_and_a_promotion_ends_it(
    desk: Harness, clock: FrozenClock
) -> None:
    ann = await onboarded(desk, "Ann")
    await desk.bot_status("restricted", was="administrator")  # may no longer post
    await desk.app.outbox.drain(desk.app.bot)
    stored = await state(desk)
    assert stored is not None and '"reason": "right:can_send_messages"' in stored
    [told] = to_owner(desk, OWNERS[0], LOST)
    assert "can_send_messages" in told and "right to post" in told
    number = await file_erasure(desk, ann, "while demoted")
    clock.advance(timedelta(hours=2))
    await desk.bot_status("administrator", was="restricted")
    await until_posted(desk, clock, [number])
    assert card_numbers(desk) == {number: 1}
    assert await state(desk) is None and len(to_owner(desk, OWNERS[1], FOUND)) == 1


async def test_a_missing_right_to_delete_holds_only_the_deletions(
    desk: Harness, clock: FrozenClock
) -> None:
    ann = await onboarded(desk, "Ann")
    relayed = await desk.app.bot.send_message(ADMIN_CHAT_ID, "relayed from a person")
    async with desk.app.sessions() as session:
        repo = Repositories(session)
        deletion = await repo.outbox.add(
            kind=OutboxKind.UNRELAY,
            chat_id=ADMIN_CHAT_ID,
            message_id=relayed.message_id,
            text=json.dumps({"erased": "erased", "key": ""}),
            now=clock.now(),
        )
        await repo.commit()
    refusal = "Bad Request: not enough rights to delete a message"
    desk.fake.fail("deleteMessage", chat_id=ADMIN_CHAT_ID, description=refusal, times=10**9)
    await drive(desk, clock, 2)
    stored = await state(desk)
    assert stored is not None and '"reason": "right:can_delete_messages"' in stored
    number = await file_erasure(desk, ann)
    await drive(desk, clock, 5)
    assert card_numbers(desk) == {number: 1}  # cards still go out
    assert await state(desk) == stored  # and do not end it: the right is still missing
    [told] = to_owner(desk, OWNERS[0], LOST)
    assert "lacks the right can_delete_messages" in told
    desk.fake.failures.clear()  # the right is given back
    await desk.bot_status("administrator", was="administrator")
    await drive(desk, clock, 5)
    async with desk.app.sessions() as session:
        item = await Repositories(session).outbox.get(deletion.id)
    assert item is not None and item.status == "sent"
    assert (ADMIN_CHAT_ID, relayed.message_id) not in desk.fake.messages
    assert await state(desk) is None and len(to_owner(desk, OWNERS[0], FOUND)) == 1


async def test_an_item_that_goes_out_ends_the_state_without_a_membership_update(
    desk: Harness, clock: FrozenClock
) -> None:
    """A missed `my_chat_member` update (the bot was offline): the backoff's next try finds the
    group back, and that ends the state as well."""
    ann = await onboarded(desk, "Ann")
    desk.fake.fail(
        "sendMessage", chat_id=ADMIN_CHAT_ID, status=400, description="Bad Request: chat not found"
    )
    number = await file_erasure(desk, ann)
    await desk.app.outbox.drain(desk.app.bot)
    assert await state(desk) is not None and desk.cards() == []
    clock.advance(timedelta(minutes=15))
    await desk.app.outbox.drain(desk.app.bot)
    assert card_numbers(desk) == {number: 1}
    assert await state(desk) is None and len(to_owner(desk, OWNERS[0], FOUND)) == 1


async def test_300_cards_at_once_are_paced_under_the_groups_limit_edits_after_their_cards(
    desk: Harness, clock: FrozenClock
) -> None:
    limit = desk.fake.flood_limit(ADMIN_CHAT_ID, clock.now, per_minute=20)
    ann = await onboarded(desk, "Ann")
    numbers = await file_directly(desk, ann, 300)
    edited = numbers[::10]
    async with desk.app.sessions() as session:
        repo = Repositories(session)
        for number in edited:  # a later change of each of these cards, queued after it
            await repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=number, now=clock.now())
        await repo.commit()
    took = await until_posted(desk, clock, numbers)
    await drive(desk, clock, 120)  # the last edits
    assert limit.refused == 0  # not one 429: paced, not throttled by Telegram
    assert timedelta(minutes=14) < took < timedelta(minutes=17)  # 20 a minute, not slower
    assert card_numbers(desk) == dict.fromkeys(numbers, 1)
    async with desk.app.sessions() as session:
        rows = await session.execute(select(Request.id, Request.card_message_id))
        cards = {number: message_id for number, message_id in rows}
    edits = [
        int(params["message_id"])
        for method, params in desk.fake.calls
        if method == "editMessageText" and str(params.get("chat_id")) == str(ADMIN_CHAT_ID)
    ]
    # Every edit reached its card: none was tried (and skipped) before the card was posted.
    assert sorted(edits) == sorted(cards[n] for n in edited)
    assert all(i.status == "sent" for i in await staff_items(desk))


async def test_two_instances_share_one_pace(
    desk: Harness, fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> None:
    """A second process does not double the rate: the group's slot is in the database."""
    twin = Harness(
        fake,
        tmp_path,
        pack=desk.settings.policy_pack,
        clock=clock,
        owner_ids=list(OWNERS),
        staff_rate=20,
        admin_locale="en",
    )
    await twin.start()
    try:
        await stop_workers(twin)
        limit = fake.flood_limit(ADMIN_CHAT_ID, clock.now, per_minute=20)
        ann = await onboarded(desk, "Ann")
        numbers = await file_directly(desk, ann, 45)
        for _ in range(24 * 60):
            await desk.app.outbox.drain(desk.app.bot)
            await twin.app.outbox.drain(twin.app.bot)
            if set(card_numbers(desk)) >= set(numbers):
                break
            clock.advance(timedelta(seconds=1))
        assert limit.refused == 0 and card_numbers(desk) == dict.fromkeys(numbers, 1)
    finally:
        await twin.stop()


async def test_a_bot_demoted_to_a_plain_member_lacks_the_right_to_delete(
    desk: Harness, clock: FrozenClock
) -> None:
    """A plain member can post but not delete: the state is entered at once (owners told once),
    not only when a redaction fails; cards keep going out."""
    ann = await onboarded(desk, "Ann")
    await desk.bot_status("member", was="administrator")
    stored = await state(desk)
    assert stored is not None and '"reason": "right:can_delete_messages"' in stored
    number = await file_erasure(desk, ann)
    await drive(desk, clock, 5)
    assert card_numbers(desk) == {number: 1}
    await desk.bot_status("member", was="member")  # any later update: still no right
    await drive(desk, clock, 5)
    assert await state(desk) == stored
    for owner in OWNERS:
        assert len(to_owner(desk, owner, LOST)) == 1 and to_owner(desk, owner, FOUND) == []


@pytest.mark.parametrize("restart", [False, True], ids=["update", "restart"])
async def test_the_right_to_delete_still_missing_is_no_false_fixed(
    desk: Harness, clock: FrozenClock, restart: bool
) -> None:
    """An administrator without the right to delete: a membership update (or a restart's check)
    that leaves it missing keeps the state; the owners hear no "fixed"."""
    no_delete = {"can_delete_messages": False}
    await desk.bot_status("administrator", was="administrator", rights=no_delete)
    stored = await state(desk)
    assert stored is not None and '"reason": "right:can_delete_messages"' in stored
    await drive(desk, clock, 2)  # the owners are told before the restart
    if restart:
        await desk.restart()
        await stop_workers(desk)
    else:  # e.g. another right changed, or the bot's title
        await desk.bot_status("administrator", was="administrator", rights=no_delete)
    await drive(desk, clock, 5)
    assert await state(desk) == stored
    assert to_owner(desk, OWNERS[0], FOUND) == [] and len(to_owner(desk, OWNERS[0], LOST)) == 1
    await desk.bot_status("administrator", was="administrator")  # the right given
    await drive(desk, clock, 2)
    assert await state(desk) is None and len(to_owner(desk, OWNERS[0], FOUND)) == 1


async def test_a_forum_without_the_topic_right_does_not_flap(
    desk: Harness, clock: FrozenClock
) -> None:
    """A forum group where the bot may not open topics: notices that need no topic still go
    out, and that does not end the state (the card would fail again): owners told once."""
    desk.fake.chats[ADMIN_CHAT_ID]["is_forum"] = True
    ann = await onboarded(desk, "Ann")
    await desk.bot_status("administrator", was="administrator", rights={"can_manage_topics": False})
    stored = await state(desk)
    assert stored is not None and '"reason": "right:can_manage_topics"' in stored
    refusal = "Bad Request: not enough rights to create a topic"
    desk.fake.fail("createForumTopic", chat_id=ADMIN_CHAT_ID, description=refusal, times=10**9)
    number = await file_erasure(desk, ann)
    await drive(desk, clock, 30 * 60)  # the card's backoff reaches its cap
    for round_ in range(12):  # a notice every 5 minutes, the card tried every 15
        async with desk.app.sessions() as session:
            repo = Repositories(session)
            await repo.outbox.add(kind="to_admin", text=f"notice {round_}", now=clock.now())
            await repo.commit()
        await drive(desk, clock, 5 * 60)
    assert desk.cards() == [] and await state(desk) == stored  # the card waits for its topic
    for owner in OWNERS:
        assert len(to_owner(desk, owner, LOST)) == 1 and to_owner(desk, owner, FOUND) == []
    desk.fake.failures.clear()
    await desk.bot_status("administrator", was="administrator")  # the right given
    await until_posted(desk, clock, [number])
    assert await state(desk) is None and len(to_owner(desk, OWNERS[0], FOUND)) == 1


async def test_the_group_back_without_an_update_posts_the_oldest_card_first(
    desk: Harness, clock: FrozenClock
) -> None:
    """A card filed while the group is away does not overtake an older one waiting at its
    backoff when the group comes back without a `my_chat_member` update."""
    ann, bob = await onboarded(desk, "Ann"), await onboarded(desk, "Bob")
    desk.fake.fail(
        "sendMessage",
        chat_id=ADMIN_CHAT_ID,
        status=400,
        description="Bad Request: chat not found",
        times=10**9,
    )
    first = await file_erasure(desk, ann)
    await drive(desk, clock, 120)  # tried a few times: it waits at a growing backoff
    second = await file_erasure(desk, bob)
    desk.fake.failures.clear()  # the group is back, and no update says so
    await until_posted(desk, clock, [first, second])
    assert list(card_numbers(desk)) == [first, second]
    assert card_numbers(desk) == {first: 1, second: 1}
