"""Staff side of campaigns: /campaign and /notify_policy with a preview, Send and Cancel."""

from __future__ import annotations

import re

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.core.clock import Clock
from bot.core.formatting import fmt_date
from bot.core.i18n import LOCALES, Translator
from bot.core.policy import PolicyPack
from bot.core.roles import Need
from bot.delivery.campaigns import CampaignRunner
from bot.domain.staff import StaffDirectory
from bot.telegram import keyboards
from bot.telegram.callbacks import CampaignAction, CampaignCb
from bot.telegram.render import campaign_text
from bot.telegram.screens import edit, staff_or_alert, staff_or_refuse
from storage.enums import CampaignKind
from storage.repositories import Audience, Repositories

# The message itself must fit 4096 characters, and so must the preview staff see first (the
# same text under a two-line header): the header's room is kept free.
PREVIEW_ROOM = 120
MAX_TEXT = 4096 - PREVIEW_ROOM


def campaign_body(message: Message, command: CommandObject) -> tuple[str, int]:
    """The HTML to send (staff formatting kept) and its visible length."""
    if command.args:
        html = re.split(r"\s", message.html_text, maxsplit=1)[1].strip()
        return html, len(command.args)
    source = message.reply_to_message
    if source is not None and (source.text or source.caption):
        return source.html_text, len(source.text or source.caption or "")
    return "", 0


def recipients(repo: Repositories, pack: PolicyPack, kind: str) -> Audience:
    """Who a campaign of `kind` goes to, as a query (counted, or queued in the database)."""
    if kind == CampaignKind.POLICY:
        return repo.users.not_told_of(pack.policy.version)
    assert pack.marketing is not None
    purpose = pack.consent_purpose(pack.marketing.purpose)
    assert purpose is not None
    return repo.consents.holders(purpose.id, pack.valid_consent_versions(purpose))


async def campaign_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    assert message.from_user is not None
    if not await staff_or_refuse(message, bot, t, staff, repo, "campaign.create", None):
        return
    if pack.marketing is None:
        await message.reply(t("staff.no_marketing"))
        return
    body, length = campaign_body(message, command)
    if not body:
        await message.reply(t("staff.campaign_usage"))
        return
    reason = pack.marketing.reason.get(t.locale)
    # Each recipient gets the opening line in their own language: the longest one must fit.
    total = max(len(pack.marketing.reason.get(code)) for code in LOCALES) + 2 + length
    if total > MAX_TEXT:
        await message.reply(t("staff.campaign_too_long", length=total, limit=MAX_TEXT))
        return
    campaign = await repo.campaigns.create(
        kind=CampaignKind.MARKETING, body=body, created_by=message.from_user.id, now=clock.now()
    )
    count = await repo.campaigns.audience_size(recipients(repo, pack, CampaignKind.MARKETING))
    await repo.commit()
    preview = t(
        "staff.campaign_preview", id=campaign.id, count=count, text=campaign_text(reason, body)
    )
    await message.reply(preview, reply_markup=keyboards.campaign_preview(t, campaign.id))


async def notify_policy_command(
    message: Message,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    staff: StaffDirectory,
    repo: Repositories,
) -> None:
    assert message.from_user is not None
    if not await staff_or_refuse(message, bot, t, staff, repo, "policy.notify", None):
        return
    if pack.policy.changes is None:
        await message.reply(t("staff.notify_nothing", version=pack.policy.version))
        return
    campaign = await repo.campaigns.create(
        kind=CampaignKind.POLICY, body="", created_by=message.from_user.id, now=clock.now()
    )
    count = await repo.campaigns.audience_size(recipients(repo, pack, CampaignKind.POLICY))
    await repo.commit()
    preview = t("staff.notify_preview", id=campaign.id, count=count, version=pack.policy.version)
    preview += "\n\n" + fmt_date(pack.policy.effective_date, t, pack.zone)
    await message.reply(preview, reply_markup=keyboards.campaign_preview(t, campaign.id))


async def campaign_button(
    query: CallbackQuery,
    callback_data: CampaignCb,
    bot: Bot,
    t: Translator,
    pack: PolicyPack,
    clock: Clock,
    staff: StaffDirectory,
    campaigns: CampaignRunner,
    repo: Repositories,
) -> None:
    campaign = await repo.campaigns.get(callback_data.id)
    # A policy notice needs a DPO; a marketing campaign, marketing or a DPO.
    need = (
        Need.DPO
        if campaign is not None and campaign.kind == CampaignKind.POLICY
        else Need.CAMPAIGNS
    )
    action = f"campaign.{callback_data.action}"
    if not await staff_or_alert(query, bot, t, staff, repo, action, str(callback_data.id), need):
        return
    if campaign is None or not isinstance(query.message, Message):
        await query.answer(t("common.stale_button"), show_alert=True)
        return
    if callback_data.action is CampaignAction.CANCEL:
        if not await repo.campaigns.cancel(campaign.id):
            await query.answer(t("staff.campaign_already", id=campaign.id, status=campaign.status))
            return
        await repo.commit()
        await query.answer()
        await edit(query, t("staff.campaign_cancelled", id=campaign.id))
        return
    queued = await repo.campaigns.start(
        campaign.id,
        recipients(repo, pack, campaign.kind),
        now=clock.now(),
        progress_message_id=query.message.message_id,
    )
    if queued is None:  # a double tap, or another staff member was faster
        await query.answer(t("staff.campaign_already", id=campaign.id, status=campaign.status))
        return
    await repo.commit()
    await query.answer()
    progress = t(
        "staff.campaign_progress", id=campaign.id, sent=0, skipped=0, failed=0, left=queued
    )
    await edit(query, progress)
    campaigns.start(bot, campaign.id)


def router() -> Router:
    r = Router(name="campaigns")
    r.message.register(campaign_command, Command("campaign"))
    r.message.register(notify_policy_command, Command("notify_policy"))
    r.callback_query.register(campaign_button, CampaignCb.filter())
    return r
