"""/breach records a breach of personal-data protection and shows the authority's deadline and
the draft notice; buttons mark the authority notified and tell the affected users; /breaches
sends the register as CSV. DPO only (bot.core.roles: `breach.*`)."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message

from bot.core.clock import Clock
from bot.core.formatting import fmt_datetime
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.delivery.campaigns import CampaignRunner
from bot.domain.breaches import Breaches, parse_breach
from bot.domain.staff import StaffDirectory
from bot.telegram import keyboards
from bot.telegram.callbacks import BreachAction, BreachCb
from bot.telegram.render import breach_notice_text, breach_staff_text, breaches_csv
from bot.telegram.screens import edit, staff_or_alert, staff_or_refuse
from storage.models import Breach
from storage.repositories import Repositories


async def _screen(
    breach: Breach, breaches: Breaches, t: Translator, pack: PolicyPack
) -> tuple[str, InlineKeyboardMarkup | None]:
    affected = await breaches.affected(breach)
    text = breach_staff_text(breach, pack, t, affected)
    markup = keyboards.breach(
        breach.id,
        t,
        notified=breach.authority_notified_at is not None,
        told=breach.users_told_at is not None,
        affected=affected,
    )
    return text, markup


async def breach_command(
    message: Message,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    assert message.from_user is not None
    if not await staff_or_refuse(message, bot, t, staff, repo, "breach.record", None):
        return
    facts = parse_breach(message.text or "", pack, clock.now())
    if facts is None:
        await message.reply(t("breach.usage"))
        return
    breaches = Breaches(repo, clock, pack)
    breach = await breaches.record(message.from_user.id, facts)
    text, markup = await _screen(breach, breaches, t, pack)
    await message.reply(text, reply_markup=markup)


async def breach_button(
    query: CallbackQuery,
    callback_data: BreachCb,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    staff: StaffDirectory,
    campaigns: CampaignRunner,
    repo: Repositories,
) -> None:
    action, breach_id = callback_data.action, callback_data.id
    if not await staff_or_alert(query, bot, t, staff, repo, f"breach.{action}", str(breach_id)):
        return
    breaches = Breaches(repo, clock, pack)
    breach = await repo.breaches.get(breach_id)
    if breach is None:
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    if action is BreachAction.NOTIFIED:
        done = await breaches.authority_notified(breach_id, query.from_user.id)
        await query.answer(None if done else t("breach.already"))
    elif action is BreachAction.TELL:
        await query.answer()
        if breach.users_told_at is None:
            affected = await breaches.affected(breach)
            preview = (
                t("breach.preview", count=affected) + "\n\n" + breach_notice_text(breach, pack, t)
            )
            await edit(query, preview, keyboards.breach_confirm(breach_id, t, affected))
            return
    elif action is BreachAction.SEND and breach.users_told_at is not None:
        await query.answer(t("breach.already"), show_alert=True)
    elif action is BreachAction.SEND:
        progress = await bot.send_message(
            query.message.chat.id if query.message else 0, t("breach.sending", id=breach_id)
        )
        campaign_id = await breaches.tell_users(breach_id, query.from_user.id, progress.message_id)
        if campaign_id is None:
            await query.answer(t("breach.already"), show_alert=True)
        else:
            await query.answer()
            campaigns.start(bot, campaign_id)
    else:
        await query.answer()
    breach = await repo.breaches.get(breach_id)
    assert breach is not None
    text, markup = await _screen(breach, breaches, t, pack)
    await edit(query, text, markup)


async def breaches_command(
    message: Message,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    if not await staff_or_refuse(message, bot, t, staff, repo, "breach.register", None):
        return
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
    r.message.register(breach_command, Command("breach"))
    r.message.register(breaches_command, Command("breaches"))
    r.callback_query.register(breach_button, BreachCb.filter())
    return r
