"""Staff side of campaigns: /campaign and /notify_policy with a preview, Send and Cancel."""

from __future__ import annotations

import re
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.core.clock import Clock
from bot.core.formatting import policy_edition
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.core.roles import Need
from bot.domain.broadcasts import MAX_TEXT, Broadcasts, Launcher, marketing_length, need_to_run
from bot.telegram import keyboards
from bot.telegram.callbacks import CampaignAction, CampaignCb
from bot.telegram.filters import OnAction
from bot.telegram.screens import edit
from bot.telegram.staff_gate import StaffAction, callback_id, staff_action
from bot.telegram.texts.campaigns import campaign_text
from storage.models import Campaign
from storage.repositories import Repositories


def campaign_body(message: Message, command: CommandObject) -> tuple[str, int]:
    """The HTML to send (staff formatting kept) and its visible length."""
    if command.args:
        html = re.split(r"\s", message.html_text, maxsplit=1)[1].strip()
        return html, len(command.args)
    source = message.reply_to_message
    if source is not None and (source.text or source.caption):
        return source.html_text, len(source.text or source.caption or "")
    return "", 0


async def campaign_command(
    message: Message,
    command: CommandObject,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    repo: Repositories,
) -> None:
    assert message.from_user is not None
    if pack.marketing is None:
        await message.reply(t("staff.no_marketing"))
        return
    body, length = campaign_body(message, command)
    if not body:
        await message.reply(t("staff.campaign_usage"))
        return
    total = marketing_length(pack, length)
    if total > MAX_TEXT:
        await message.reply(t("staff.campaign_too_long", length=total, limit=MAX_TEXT))
        return
    draft = await Broadcasts(repo, clock, pack).marketing(body, message.from_user.id)
    reason = pack.marketing.reason.get(t.locale)
    text = campaign_text(reason, body)
    preview = t("staff.campaign_preview", id=draft.campaign.id, count=draft.audience, text=text)
    await message.reply(preview, reply_markup=keyboards.campaign_preview(t, draft.campaign.id))


async def notify_policy_command(
    message: Message, t: Translator, pack: PolicyPack, clock: Clock, repo: Repositories
) -> None:
    assert message.from_user is not None
    if pack.policy.changes is None:
        await message.reply(t("staff.notify_nothing", version=pack.policy.version))
        return
    draft = await Broadcasts(repo, clock, pack).policy_notice(message.from_user.id)
    version = pack.policy.version
    preview = t("staff.notify_preview", id=draft.campaign.id, count=draft.audience, version=version)
    preview += "\n\n" + policy_edition(pack, t)
    await message.reply(preview, reply_markup=keyboards.campaign_preview(t, draft.campaign.id))


async def _campaign(
    query: CallbackQuery, campaign_id: int, t: Translator, repo: Repositories
) -> Campaign | None:
    """The campaign a button is for, if it and the message it is on are still there."""
    campaign = await repo.campaigns.get(campaign_id)
    if campaign is None or not isinstance(query.message, Message):
        await query.answer(t("common.stale_button"), show_alert=True)
        return None
    return campaign


async def cancel_button(
    query: CallbackQuery,
    callback_data: CampaignCb,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    repo: Repositories,
) -> None:
    if (campaign := await _campaign(query, callback_data.id, t, repo)) is None:
        return
    if not await Broadcasts(repo, clock, pack).cancel(campaign):
        await query.answer(t("staff.campaign_already", id=campaign.id, status=campaign.status))
        return
    await query.answer()
    await edit(query, t("staff.campaign_cancelled", id=campaign.id))


async def send_button(
    query: CallbackQuery,
    callback_data: CampaignCb,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    campaigns: Launcher,
    repo: Repositories,
) -> None:
    if (campaign := await _campaign(query, callback_data.id, t, repo)) is None:
        return
    assert isinstance(query.message, Message)
    queued = await Broadcasts(repo, clock, pack).start(campaign, query.message.message_id)
    if queued is None:
        await query.answer(t("staff.campaign_already", id=campaign.id, status=campaign.status))
        return
    await query.answer()
    progress = t(
        "staff.campaign_progress", id=campaign.id, sent=0, skipped=0, failed=0, left=queued
    )
    await edit(query, progress)
    campaigns.start(bot, campaign.id)


async def _need(_: TelegramObject, data: dict[str, Any]) -> Need:
    repo: Repositories = data["repo"]
    return need_to_run(await repo.campaigns.get(data["callback_data"].id))


def _run(action: CampaignAction) -> dict[str, StaffAction]:
    return staff_action(f"campaign.{action}", subject=callback_id, need=_need)


def router() -> Router:
    r = Router(name="campaigns")
    r.message.register(campaign_command, Command("campaign"), flags=staff_action("campaign.create"))
    r.message.register(
        notify_policy_command, Command("notify_policy"), flags=staff_action("policy.notify")
    )
    r.callback_query.register(
        cancel_button,
        OnAction(CampaignCb, CampaignAction.CANCEL),
        flags=_run(CampaignAction.CANCEL),
    )
    r.callback_query.register(
        send_button,
        OnAction(CampaignCb, CampaignAction.SEND),
        flags=_run(CampaignAction.SEND),
    )
    return r
