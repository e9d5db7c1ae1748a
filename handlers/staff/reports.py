"""Accountability for staff: `/ledger [user id]` (the consent ledger as CSV) and
`/stats [period]` (figures and a chart)."""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message

from bot.core.clock import Clock
from bot.core.formatting import fmt_datetime
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.stats import collect, parse_period
from bot.telegram.charts import chart_png
from bot.telegram.files import LEDGER_COLUMNS, CsvStream, ledger_rows
from bot.telegram.staff_gate import staff_action
from bot.telegram.texts.parts import split_message
from bot.telegram.texts.stats import month_label, stats_text
from storage.repositories import Repositories


def _word(data: dict[str, Any]) -> str:
    return (data["command"].args or "").strip()


async def ledger_command(
    message: Message,
    command: CommandObject,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    repo: Repositories,
) -> None:
    word = (command.args or "").strip()
    user_id: int | None = None
    if word:
        if not word.isdigit() or await repo.users.get(int(word)) is None:
            await message.reply(t("ledger.unknown"))
            return
        user_id = int(word)
    now = clock.now()
    count = await repo.consents.ledger_size(user_id)
    stamp = now.strftime("%Y%m%d-%H%M")
    name = f"consent-ledger-{user_id}-{stamp}.csv" if user_id else f"consent-ledger-{stamp}.csv"
    document = CsvStream(LEDGER_COLUMNS, ledger_rows(repo.consents.ledger(user_id)), name)
    when = fmt_datetime(now, t, pack.zone)
    caption = (
        t("ledger.caption_user", user=user_id, count=count, when=when)
        if user_id
        else t("ledger.caption", count=count, when=when)
    )
    await message.answer_document(document, caption=caption)


async def stats_command(
    message: Message,
    command: CommandObject,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    repo: Repositories,
) -> None:
    word = (command.args or "").strip()
    now = clock.now()
    period = parse_period(word, now, pack.zone)
    if period is None:
        await message.reply(t("stats.usage"))
        return
    stats = await collect(repo, pack, period, now)
    chart = BufferedInputFile(chart_png(stats, t), filename="stats.png")
    caption = t(
        "stats.caption",
        first=month_label(period.months[0], t),
        last=month_label(period.months[-1], t),
    )
    await message.answer_photo(chart, caption=caption)
    for part in split_message(stats_text(stats, period, pack, t)):
        await message.answer(part)


def router() -> Router:
    r = Router(name="reports")
    r.message.register(
        ledger_command,
        Command("ledger"),
        flags=staff_action("ledger.export", subject=lambda _, data: _word(data)[:20] or "all"),
    )
    r.message.register(
        stats_command,
        Command("stats"),
        flags=staff_action("stats.view", subject=lambda _, data: _word(data)[:20] or None),
    )
    return r
