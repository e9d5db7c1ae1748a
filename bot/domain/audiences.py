"""Who a campaign goes to: a query over the users (counted for the preview, or queued in the
database when it starts), never a list in memory."""

from __future__ import annotations

from bot.core.policy import PolicyPack
from storage.enums import CampaignKind
from storage.repositories import Audience, Repositories


def recipients(repo: Repositories, pack: PolicyPack, kind: str) -> Audience:
    """Who a campaign of `kind` goes to: for a policy notice, the users not told of the current
    version; for marketing, those holding the marketing consent under valid terms."""
    if kind == CampaignKind.POLICY:
        return repo.users.not_told_of(pack.policy.version)
    assert pack.marketing is not None
    purpose = pack.consent_purpose(pack.marketing.purpose)
    assert purpose is not None
    return repo.consents.holders(purpose.id, pack.valid_consent_versions(purpose))
