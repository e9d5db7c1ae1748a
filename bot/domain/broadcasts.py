"""Campaigns from the staff side: a draft with its audience counted, the length its text may
have, the role sending one needs, starting and cancelling it. The runner that sends them lives
in `bot.delivery.campaigns`; handlers reach it as a `Launcher` from the dispatcher's data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiogram import Bot

from bot.core.clock import Clock
from bot.core.i18n import LOCALES
from bot.core.policy import PolicyPack
from bot.core.roles import Need
from bot.domain.audiences import recipients
from storage.enums import CampaignKind
from storage.models import Campaign
from storage.repositories import Repositories

# The message itself must fit 4096 characters, and so must the preview staff see first (the
# same text under a two-line header): the header's room is kept free.
PREVIEW_ROOM = 120
MAX_TEXT = 4096 - PREVIEW_ROOM


class Launcher(Protocol):
    """What starts sending a campaign in the background (`CampaignRunner`)."""

    def start(self, bot: Bot, campaign_id: int) -> None: ...


def need_to_run(campaign: Campaign | None) -> Need:
    """A policy notice needs a DPO; a marketing campaign, marketing or a DPO."""
    return (
        Need.DPO
        if campaign is not None and campaign.kind == CampaignKind.POLICY
        else Need.CAMPAIGNS
    )


def marketing_length(pack: PolicyPack, length: int) -> int:
    """The longest message a marketing text of `length` makes: each recipient gets the opening
    line in their own language, so the longest one must fit."""
    assert pack.marketing is not None
    return max(len(pack.marketing.reason.get(code)) for code in LOCALES) + 2 + length


@dataclass(frozen=True)
class Draft:
    campaign: Campaign
    audience: int  # how many it would reach now


class Broadcasts:
    def __init__(self, repo: Repositories, clock: Clock, pack: PolicyPack) -> None:
        self._repo = repo
        self._clock = clock
        self._pack = pack

    async def marketing(self, body: str, staff_id: int) -> Draft:
        """A marketing campaign waiting for staff's Send, and how many it would reach."""
        return await self._draft(CampaignKind.MARKETING, body, staff_id)

    async def policy_notice(self, staff_id: int) -> Draft:
        """The notice of the current policy version to the users not yet told of it."""
        return await self._draft(CampaignKind.POLICY, "", staff_id)

    async def _draft(self, kind: CampaignKind, body: str, staff_id: int) -> Draft:
        campaign = await self._repo.campaigns.create(
            kind=kind, body=body, created_by=staff_id, now=self._clock.now()
        )
        count = await self._repo.campaigns.audience_size(recipients(self._repo, self._pack, kind))
        # Committed before its preview (with the draft's number in its buttons) is shown: a
        # draft rolled back after its preview went out could leave its number to the next one.
        await self._repo.commit()
        return Draft(campaign, count)

    async def start(self, campaign: Campaign, progress_message_id: int) -> int | None:
        """Queue a delivery per recipient; how many, or None when it had already started (a
        double tap, or another staff member was faster)."""
        queued = await self._repo.campaigns.start(
            campaign.id,
            recipients(self._repo, self._pack, campaign.kind),
            now=self._clock.now(),
            progress_message_id=progress_message_id,
        )
        if queued is not None:
            # Committed here, not with the update: the runner that starts next reads the queue
            # from its own session.
            await self._repo.commit()
        return queued

    async def cancel(self, campaign: Campaign) -> bool:
        """False when it is no longer a draft."""
        cancelled = await self._repo.campaigns.cancel(campaign.id)
        await self._repo.commit()  # before the button is answered (it can fail): it stands
        return cancelled
