"""The catalogue of rights requests: which types are filed, what each asks (questions, the
fields the bot can correct, the processing one can object to) and the limits of what users
and staff write."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.policy import LegalBasis, PolicyPack, RequestType
from bot.domain.attachments import Attachment, AttachmentKind
from storage.models import Request

MAX_TEXT = 1000
# What staff may write to a user in one message (a reply, a reason, a question): it is sent inside
# a short template, and the whole must fit Telegram's 4096 characters (tests check the margin).
MAX_STAFF_TEXT = 3500
# A reason, question or hold is also shown on the card, next to the user's answers (each at most
# MAX_TEXT): together they must fit one message.
MAX_REASON = 1000

MAX_FLOW_FILES = 10  # files a user may add while filing one request


def kept_file(
    file: Attachment, chat_id: int, message_id: int, caption: str | None
) -> dict[str, Any]:
    """A file sent while filing, as kept in the conversation state until the request is sent."""
    return {
        "kind": file.kind,
        "size": file.size,
        "chat": chat_id,
        "message": message_id,
        "caption": caption or "",
    }


def file_of(kept: Mapping[str, Any]) -> Attachment:
    """A file kept by `kept_file`, back as the attachment it was."""
    return Attachment(AttachmentKind(kept["kind"]), kept["size"])


# Request types that go to the admin desk; withdrawal leads to /consents, complaint is information.
FILED = (
    RequestType.ACCESS,
    RequestType.DISCLOSURES,  # Law 99-Z art. 12: free once a calendar year, a repeat is served
    RequestType.RECTIFICATION,
    RequestType.ERASURE,
    RequestType.RESTRICTION,
    RequestType.OBJECTION,
    RequestType.PORTABILITY,
)


@dataclass(frozen=True)
class Question:
    key: str
    optional: bool = False
    choices: bool = False  # answered with a button (objection: which processing)


QUESTIONS: dict[RequestType, tuple[Question, ...]] = {
    RequestType.ACCESS: (),
    RequestType.DISCLOSURES: (),
    RequestType.PORTABILITY: (),
    RequestType.RECTIFICATION: (Question("field", choices=True), Question("value")),
    RequestType.ERASURE: (Question("reason", optional=True),),
    RequestType.RESTRICTION: (Question("reason", optional=True),),
    RequestType.OBJECTION: (Question("processing", choices=True), Question("reason")),
}


# Data the bot itself holds and can correct; "other" is data kept elsewhere (staff act there).
CORRECTABLE = ("first_name", "last_name", "phone")
FIELD_CHOICES = (*CORRECTABLE, "other")


def objection_choices(pack: PolicyPack) -> list[str]:
    """Processing one can object to: legitimate interests, and direct marketing."""
    ids = [p.id for p in pack.purposes if p.legal_basis is LegalBasis.LEGITIMATE_INTERESTS]
    if pack.marketing is not None:
        ids.append(pack.marketing.purpose)
    return ids


def offered(pack: PolicyPack) -> list[RequestType]:
    """What /rights lists: every right the pack offers (the disclosures right where its law
    gives it, Law 99-Z art. 12)."""
    return list(pack.rights)


def normalize_phone(raw: str) -> str:
    digits = re.sub(r"\D", "", raw)
    return f"+{digits}"


def details_of(request: Request) -> dict[str, str]:
    return dict(json.loads(request.details))
