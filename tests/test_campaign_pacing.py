"""Campaign pacing to deadlines and batched claims, with an injected clock: nothing is timed."""

from __future__ import annotations

import asyncio
import math

from sqlalchemy import select

from bot.delivery.campaigns import Pacer
from storage.models import Delivery
from storage.repositories import Eligibility, Repositories
from tests.kit import Harness
from tests.test_campaigns import campaign_messages, start_campaign, subscriber


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_sends_are_paced_to_deadlines_not_to_intervals_after_each_send() -> None:
    time = FakeTime()
    pacer = Pacer(25, time.monotonic, time.sleep)
    starts = []
    for _ in range(101):
        await pacer.wait()
        starts.append(time.now)
        time.now += 0.012  # the send itself takes time: it must not slow the rate down
    rate = 100 / (starts[-1] - starts[0])
    assert 24.5 <= rate <= 25.0, rate  # sleeping 1/25 s after each send gave 19.2 here


async def test_small_delays_are_caught_up_without_drift() -> None:
    time = FakeTime()
    pacer = Pacer(25, time.monotonic, time.sleep)
    starts = []
    for n in range(101):
        await pacer.wait()
        starts.append(time.now)
        time.now += 0.1 if n % 10 == 0 else 0.001  # a slow claim every tenth send
    rate = 100 / (starts[-1] - starts[0])
    assert 24.5 <= rate <= 25.0, rate


async def test_a_pause_moves_later_deadlines_and_a_long_stall_does_not_burst() -> None:
    time = FakeTime()
    pacer = Pacer(10, time.monotonic, time.sleep)
    await pacer.wait()
    pacer.pause(2.0)  # Telegram said retry_after=2
    await pacer.wait()
    assert time.now == 2.0
    time.now += 5.0  # a long stall: no burst of 50 sends to catch up
    await pacer.wait()
    before = time.now
    await pacer.wait()
    assert math.isclose(time.now - before, 0.1)


async def test_uncapped_never_sleeps() -> None:
    time = FakeTime()
    pacer = Pacer(math.inf, time.monotonic, time.sleep)
    for _ in range(1000):
        await pacer.wait()
    assert time.now == 0.0


def marketing_rules(bot: Harness) -> Eligibility:
    pack = bot.pack
    assert pack.marketing is not None
    purpose = pack.consent_purpose(pack.marketing.purpose)
    assert purpose is not None
    return Eligibility(purpose=purpose.id, versions=frozenset(pack.valid_consent_versions(purpose)))


async def queue_campaign(bot: Harness) -> int:
    """A marketing campaign queued but not started: the test claims from it or starts it. The
    instance's campaign watcher is stopped first: every TAKE_OVER_SECONDS it starts unfinished
    campaigns that run nowhere, and would take this one over."""
    await bot.app.campaigns.stop()  # nothing runs yet: this ends only the watcher
    rules = marketing_rules(bot)
    now = bot.app.clock.now()
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        campaign = await repo.campaigns.create(
            kind="marketing", body="Big sale", created_by=1, now=now
        )
        audience = repo.consents.holders(rules.purpose or "", set(rules.versions))
        assert await repo.campaigns.start(campaign.id, audience, now=now, progress_message_id=1)
        await repo.commit()
    return campaign.id


async def test_deliveries_are_claimed_in_batches_and_checked_at_the_claim(bot: Harness) -> None:
    people = [await subscriber(bot, name) for name in ("Ann", "Ben", "Cleo")]
    rules = marketing_rules(bot)
    now = bot.app.clock.now()
    campaign_id = await queue_campaign(bot)
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        first = await repo.campaigns.claim(campaign_id, 2, rules, now=now)
        await repo.commit()
    assert [c.user_id for c in first.claimed] == [people[0].id, people[1].id]
    assert first.skipped == 0 and first.seen == 2
    await people[2].send("/consents")
    await people[2].tap("✅ Marketing messages")  # withdraws before their message goes out
    async with bot.app.sessions() as session:
        repo = Repositories(session)
        rest = await repo.campaigns.claim(campaign_id, 2, rules, now=now)
        again = await repo.campaigns.claim(campaign_id, 2, rules, now=now)
        await repo.commit()
        counts = await repo.campaigns.counts(campaign_id)
    assert rest.claimed == [] and rest.skipped == 1 and rest.seen == 1
    assert again.seen == 0
    assert counts == {"sending": 2, "skipped": 1}


async def test_two_claimers_never_take_the_same_delivery(bot: Harness) -> None:
    people = [await subscriber(bot, name) for name in ("Ann", "Ben", "Cleo", "Dan", "Eve")]
    rules = marketing_rules(bot)
    now = bot.app.clock.now()
    campaign_id = await queue_campaign(bot)

    async def claimer() -> list[int]:
        taken: list[int] = []
        while True:
            async with bot.app.sessions() as session:
                repo = Repositories(session)
                claim = await repo.campaigns.claim(campaign_id, 2, rules, now=now)
                await repo.commit()
            if not claim.seen:
                return taken
            taken += [c.delivery_id for c in claim.claimed]
            await asyncio.sleep(0)

    first, second = await asyncio.gather(claimer(), claimer())
    assert sorted(first + second) == sorted(set(first + second))  # nobody twice
    assert len(first + second) == len(people)


async def test_a_batch_that_is_all_skipped_does_not_end_the_campaign(bot: Harness) -> None:
    people = [await subscriber(bot, name) for name in ("Ann", "Ben", "Cleo")]
    campaign_id = await queue_campaign(bot)
    for person in people[:2]:  # withdraw after the campaign was queued
        await person.send("/consents")
        await person.tap("✅ Marketing messages")
    bot.app.campaigns.rate = 5  # claims of one: two claims in a row take nobody
    bot.app.campaigns.start(bot.app.bot, campaign_id)
    await bot.app.campaigns.drain()
    assert [len(campaign_messages(p)) for p in people] == [0, 0, 1]
    async with bot.app.sessions() as session:
        counts = await Repositories(session).campaigns.counts(campaign_id)
    assert counts == {"skipped": 2, "sent": 1}


async def test_a_stop_keeps_every_outcome(bot: Harness) -> None:
    people = [await subscriber(bot, name) for name in ("Ann", "Ben", "Cleo", "Dan")]
    release = bot.fake.hold(people[1].id)
    staff = bot.staff("Sam")
    await start_campaign(bot, staff)
    async with asyncio.timeout(10):
        while people[1].id not in bot.fake.held:  # noqa: ASYNC110 - a background task
            await asyncio.sleep(0.01)
    await bot.app.campaigns.stop()  # Ben's call is under way; Ann's is done
    release.set()
    async with bot.app.sessions() as session:
        statuses = {d.user_id: d.status for d in (await session.scalars(select(Delivery))).all()}
    assert statuses[people[0].id] == "sent"  # written although no later claim came
    assert statuses[people[1].id] in ("sending", "sent")  # cut off after the grace: uncertain
    for person in people[2:]:  # claimed or not, never left as if sent
        sent = len(campaign_messages(person)) == 1
        assert statuses[person.id] == ("sent" if sent else "pending"), person.first_name
