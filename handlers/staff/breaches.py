"""/breach records a breach of personal-data protection and shows the authority's deadline and
the draft notice; buttons mark the authority notified and tell the affected users; /breaches
sends the register as CSV. DPO only (bot.core.roles: `breach.*`)."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
)

from bot.core.clock import Clock
from bot.core.formatting import fmt_datetime
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.breaches import Breaches, parse_breach
from bot.domain.broadcasts import Launcher
from bot.telegram import keyboards
from bot.telegram.callbacks import BreachAction, BreachAuthorityCb, BreachCb
from bot.telegram.files import breaches_csv
from bot.telegram.filters import OnAction
from bot.telegram.screens import edit
from bot.telegram.staff_gate import callback_id, staff_action
from bot.telegram.texts.breaches import breach_notice_text, breach_staff_text
from storage.models import Breach
from storage.repositories import Repositories


async def _screen(
    breach: Breach, breaches: Breaches, t: Translator, pack: PolicyPack
) -> tuple[str, InlineKeyboardMarkup | None]:
    affected = await breaches.affected(breach)
    notified = await breaches.notified(breach)
    text = breach_staff_text(breach, pack, t, affected, breaches.now(), notified)
    markup = keyboards.breach(
        breach.id,
        t,
        pack,
        pending=breaches.pending(breach, notified),
        told=breach.users_told_at is not None,
        affected=affected,
    )
    return text, markup


async def breach_command(
    message: Message, t: Translator, pack: PolicyPack, clock: Clock, repo: Repositories
) -> None:
    assert message.from_user is not None
    facts = parse_breach(message.text or "", pack, clock.now())
    if facts is None:
        await message.reply(t("breach.usage"))
        return
    breaches = Breaches(repo, clock, pack)
    breach = await breaches.record(message.from_user.id, facts)
    text, markup = await _screen(breach, breaches, t, pack)
    await message.reply(text, reply_markup=markup)


async def _breach(
    query: CallbackQuery, breach_id: int, t: Translator, repo: Repositories
) -> Breach | None:
    breach = await repo.breaches.get(breach_id)
    if breach is None:
        await query.answer(t("common.stale_button"), show_alert=True)
    return breach


async def _refresh(
    query: CallbackQuery, breach_id: int, breaches: Breaches, t: Translator, pack: PolicyPack
) -> None:
    """The breach's screen again, as it is now, on the message the button was on."""
    breach = await breaches.get(breach_id)
    assert breach is not None
    text, markup = await _screen(breach, breaches, t, pack)
    await edit(query, text, markup)


async def notified_button(
    query: CallbackQuery,
    callback_data: BreachCb,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    repo: Repositories,
) -> None:
    """Staff sent the notice to the authority: the only one of a single-law pack. Under two
    laws each authority has its own button (`authority_button`); this one (on an older card)
    marks nothing there and shows them."""
    if await _breach(query, callback_data.id, t, repo) is None:
        return
    law = pack.under[0].id if len(pack.under) == 1 else ""
    await _mark(query, callback_data.id, law, t, pack, Breaches(repo, clock, pack))


async def authority_button(
    query: CallbackQuery,
    callback_data: BreachAuthorityCb,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    repo: Repositories,
) -> None:
    """Staff sent the notice to the authority of one of the pack's laws."""
    if await _breach(query, callback_data.id, t, repo) is None:
        return
    breaches = Breaches(repo, clock, pack)
    if not breaches.knows(callback_data.law):  # forged or from another pack: nothing changes
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    await _mark(query, callback_data.id, callback_data.law, t, pack, breaches)


async def _mark(
    query: CallbackQuery,
    breach_id: int,
    law: str,
    t: Translator,
    pack: PolicyPack,
    breaches: Breaches,
) -> None:
    if not law:  # an older card's one button under two laws: each has its own now
        await query.answer(t("breach.notified_choose"), show_alert=True)
    else:
        done = await breaches.authority_notified(breach_id, query.from_user.id, law)
        await query.answer(None if done else t("breach.already"))
    await _refresh(query, breach_id, breaches, t, pack)


async def tell_button(
    query: CallbackQuery,
    callback_data: BreachCb,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    repo: Repositories,
) -> None:
    """The notice the affected users would get, and how many they are, before Send."""
    if (breach := await _breach(query, callback_data.id, t, repo)) is None:
        return
    breaches = Breaches(repo, clock, pack)
    await query.answer()
    if breach.users_told_at is None:
        affected = await breaches.affected(breach)
        preview = t("breach.preview", count=affected) + "\n\n" + breach_notice_text(breach, pack, t)
        await edit(query, preview, keyboards.breach_confirm(breach.id, t, affected))
        return
    await _refresh(query, breach.id, breaches, t, pack)


async def send_button(
    query: CallbackQuery,
    callback_data: BreachCb,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    campaigns: Launcher,
    repo: Repositories,
) -> None:
    """Confirmed: the affected users are told, once, as a campaign."""
    if (breach := await _breach(query, callback_data.id, t, repo)) is None:
        return
    breaches = Breaches(repo, clock, pack)
    if breach.users_told_at is not None:
        await query.answer(t("breach.already"), show_alert=True)
    else:
        chat_id = query.message.chat.id if query.message else 0
        progress = await bot.send_message(chat_id, t("breach.sending", id=breach.id))
        campaign_id = await breaches.tell_users(breach.id, query.from_user.id, progress.message_id)
        if campaign_id is None:
            await query.answer(t("breach.already"), show_alert=True)
        else:
            await query.answer()
            campaigns.start(bot, campaign_id)
    await _refresh(query, callback_data.id, breaches, t, pack)


async def back_button(
    query: CallbackQuery,
    callback_data: BreachCb,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    repo: Repositories,
) -> None:
    if await _breach(query, callback_data.id, t, repo) is None:
        return
    await query.answer()
    await _refresh(query, callback_data.id, Breaches(repo, clock, pack), t, pack)


async def breaches_command(
    message: Message, t: Translator, pack: PolicyPack, clock: Clock, repo: Repositories
) -> None:
    rows = []
    for breach in await repo.breaches.every():
        told = await repo.campaigns.deliveries(breach.campaign_id) if breach.campaign_id else []
        rows.append((breach, told))
    now = clock.now()
    document = BufferedInputFile(
        breaches_csv(rows), filename=f"breaches-{now.strftime('%Y%m%d-%H%M')}.csv"
    )
    caption = t("breach.register_caption", count=len(rows), when=fmt_datetime(now, t, pack.zone))
    await message.answer_document(document, caption=caption)


def router() -> Router:
    r = Router(name="breaches")
    r.message.register(breach_command, Command("breach"), flags=staff_action("breach.record"))
    r.message.register(breaches_command, Command("breaches"), flags=staff_action("breach.register"))
    for action, button in (
        (BreachAction.NOTIFIED, notified_button),
        (BreachAction.TELL, tell_button),
        (BreachAction.SEND, send_button),
        (BreachAction.BACK, back_button),
    ):
        r.callback_query.register(
            button,
            OnAction(BreachCb, action),
            flags=staff_action(f"breach.{action}", subject=callback_id),
        )
    r.callback_query.register(
        authority_button,
        BreachAuthorityCb.filter(),
        flags=staff_action(f"breach.{BreachAction.NOTIFIED}", subject=_law_subject),
    )
    return r


def _law_subject(_: TelegramObject, data: dict[str, Any]) -> str:
    """The audit subject of a per-authority mark: the breach and the law ('3:gdpr')."""
    callback: BreachAuthorityCb = data["callback_data"]
    return f"{callback.id}:{callback.law}"[:64]  # the audit log's subject column
