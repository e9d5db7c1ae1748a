"""The campaign benchmark: delivery paced and uncapped, and the sender's resident memory;
the sender runs in a child process (`tests.bench.child`), the fake Bot API in this one."""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.domain.audiences import recipients
from storage.enums import CampaignKind
from storage.repositories import Repositories
from tests.bench.common import FIRST_ID, child_env, fill, run_child
from tests.fake_telegram import FakeTelegram
from tests.kit import Harness


class CountingTelegram(FakeTelegram):
    """The fake Bot API that keeps no messages of the recipients (a million of them)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: list[float] = []

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        if chat_id < FIRST_ID:
            return super()._m_sendMessage(params)
        self.sent_at.append(time.perf_counter())
        chat = {"id": chat_id, "type": "private", "first_name": "B"}
        return {"message_id": len(self.sent_at), "date": 0, "chat": chat, "text": "x"}


async def queue_campaign(harness: Harness) -> None:
    """A marketing campaign to every holder, queued and started in the database; the bot
    process started next resumes it, as after a restart."""
    app = harness.app
    now = app.clock.now()
    async with app.sessions() as session:
        repo = Repositories(session)
        marketing = CampaignKind.MARKETING
        campaign = await repo.campaigns.create(kind=marketing, body="Sale", created_by=1, now=now)
        audience = recipients(repo, app.pack, marketing)
        await repo.campaigns.start(campaign.id, audience, now=now, progress_message_id=0)
        await repo.commit()


def delivery_rate(fake: CountingTelegram) -> float:
    sent = len(fake.sent_at)
    return (sent - 1) / (fake.sent_at[-1] - fake.sent_at[0]) if sent > 1 else 0.0


async def bench_campaigns(recipients_n: int) -> dict[str, Any]:
    """The sender (the bot's campaign runner, or the bare loop) runs in a process of its own,
    the fake Bot API in this one: neither's CPU nor memory is counted to the other."""
    logging.disable(logging.CRITICAL)
    result: dict[str, Any] = {}
    fake = CountingTelegram()
    await fake.start()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        # The ceiling on this machine: the same Bot API call, 32 at a time, no database at all.
        fake.sent_at.clear()
        child = await run_child(["bare-sender", "5000"], child_env(fake), Path(folder))
        result["bare_send_loop"] = {
            "recipients": 5000,
            "sent": len(fake.sent_at),
            "per_second": delivery_rate(fake),
            **child,
        }
    for label, users, rate, budget in (
        ("paced_25", 250, 25.0, 3600.0),
        ("uncapped", 20_000, math.inf, 3600.0),
        ("million", recipients_n, math.inf, 20.0),
    ):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
            harness = Harness(fake, Path(folder))
            await harness.start()
            await fill(harness, users, users)
            await queue_campaign(harness)
            await harness.stop()
            fake.sent_at.clear()
            env = child_env(fake, harness.settings.database_url)
            child = await run_child(["sender", str(rate), str(budget)], env, Path(folder))
            result[label] = {
                "recipients": users,
                "sent": len(fake.sent_at),
                "per_second": delivery_rate(fake),
                **child,
            }
    await fake.stop()
    return result


def print_campaigns(result: dict[str, Any]) -> None:
    print("campaign benchmark (the sender in its own process, the fake Bot API in this one):")
    for label, row in result.items():
        after_start = row.get("rss_after_start_mb")
        start = f"{after_start:.0f} MB after start-up, " if after_start is not None else ""
        print(
            f"  {label}: {row['sent']} of {row['recipients']} sent, "
            f"{row['per_second']:.1f} deliveries/s; sender RSS {start}"
            f"{row['rss_mb']:.0f} MB at the end, peak {row['peak_mb']:.0f} MB"
        )
