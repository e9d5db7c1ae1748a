"""Disclosures to third parties that staff record with /disclose: each is told in the person's
access answer (GDPR art. 15(1)(c); Law 99-Z art. 12), and each recipient is told of a later
erasure, rectification or restriction (GDPR art. 19)."""

from __future__ import annotations

from datetime import datetime

from storage.repositories import Repositories


async def record_disclosure(
    repo: Repositories,
    *,
    at: datetime,
    user_id: int,
    recipient: str,
    data: str,
    legal_basis: str,
    staff_id: int,
) -> None:
    await repo.disclosures.add(
        user_id=user_id,
        at=at,
        recipient=recipient,
        data=data,
        legal_basis=legal_basis,
        staff_id=staff_id,
    )
    # Committed before staff are told it is recorded: the record of disclosures is evidence,
    # and a failed reply must not undo it.
    await repo.commit()
