"""Callback data. Prefixes carry a version so buttons from an older release are recognised as
stale instead of misread. Nothing in them is trusted: handlers check every value against the
sender (Telegram authenticates `from_user`) and the database."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from bot.domain.onboarding import AgeGroup

# Any number a client sends is bounded before it reaches the database: a forged 20-digit ID
# fails to unpack (the button is then treated as stale) instead of overflowing SQLite's integer.
MAX_ID = 2**53 - 1  # Telegram IDs have at most 52 significant bits
Id = Annotated[int, Field(ge=0, le=MAX_ID)]


class AgeCb(CallbackData, prefix="v1age"):
    answer: AgeGroup


class LangCb(CallbackData, prefix="v1lang"):
    code: str


class MenuAction(StrEnum):
    NOTICE = "notice"
    LANGUAGE = "language"
    HELP = "help"
    GUARDIAN_LINK = "guardian"
    CONSENTS = "consents"
    RIGHTS = "rights"
    REQUESTS = "requests"
    HOME = "home"


class MenuCb(CallbackData, prefix="v1menu"):
    action: MenuAction


class GuardianAction(StrEnum):
    ADULT = "adult"
    MINOR = "minor"
    CONFIRM = "confirm"
    CANCEL = "cancel"


class GuardianCb(CallbackData, prefix="v1rep"):
    action: GuardianAction


class ConsentAction(StrEnum):
    LIST = "l"
    INFO = "i"
    GRANT = "g"
    WITHDRAW = "w"
    HISTORY = "h"
    LOCKED = "x"


class ConsentCb(CallbackData, prefix="v1con"):
    """`minor` is set when a legal representative acts for a minor; it is checked against the
    recorded confirmations on every press."""

    action: ConsentAction
    purpose: str = "-"
    minor: Id = 0


class UnsubCb(CallbackData, prefix="v1unsub"):
    campaign: Id


class CampaignAction(StrEnum):
    SEND = "send"
    CANCEL = "cancel"


class CampaignCb(CallbackData, prefix="v1camp"):
    id: Id
    action: CampaignAction


class RequestAction(StrEnum):
    TAKE = "take"
    DONE = "done"
    REFUSE = "refuse"  # an older card's Refuse: the grounds are GroundCb buttons now
    UNFOUNDED = "unfounded"  # an older card's button: the pack's ground `unfounded`, if it has it
    QUESTION = "ask"  # a question: the due date stays
    CLARIFY = "clarify"  # identity or scope: the due date restarts or pauses (pack)
    EXTEND = "extend"  # GDPR art. 12(3): two further months, once
    BLOCK = "block"
    LIFT = "lift"  # lift a restriction that staff approved
    TEMPLATE = "tpl"  # pick an answer template
    RESTRICT = "restrict"  # not a button: "Done" on a restriction asks until when
    RECLARIFY = "reclarify"  # not a button: a DPO's reason for a clarification beyond the limit
    # A DPO completes a request being carried out in the operator's systems, the rest explained.
    EXPLAIN = "complete_explained"
    TICK = "tick"  # not a button: the note of a system done by hand (JobCb asks for it)


class RequestCb(CallbackData, prefix="v1req"):
    """A card button. The request ID is only trusted after the staff check."""

    id: Id
    action: RequestAction


class JobAction(StrEnum):
    RETRY = "retry"  # a system that failed past the limit: try again now
    TICK = "tick"  # a system done by hand: a note follows


class JobCb(CallbackData, prefix="v1job"):
    """A button of a card's checklist: one system's job of one request. Both IDs are checked
    against the database on every press (the job must be the request's, the request being
    carried out)."""

    request: Id
    job: Id
    action: JobAction


class GroundCb(CallbackData, prefix="v1ground"):
    """A refusal on one of the pack's grounds (`RefusalGround.id`): checked against the pack
    and the request's type on every press."""

    id: Id
    ground: Annotated[str, Field(max_length=24)]


class TemplateCb(CallbackData, prefix="v1tpl"):
    """A template picked for a request; template 0 closes the picker."""

    request: int
    template: int


class RightsAction(StrEnum):
    PICK = "pick"  # a request type from /rights
    CHOICE = "choice"  # an answer given with a button
    SKIP = "skip"
    BACK = "back"
    SUBMIT = "submit"
    CANCEL = "cancel"
    LIST = "list"


class RightsCb(CallbackData, prefix="v1rights"):
    action: RightsAction
    value: str = "-"


class BreachAction(StrEnum):
    NOTIFIED = "notified"  # staff sent the notice to the authority
    TELL = "tell"  # preview the notice to the affected users
    SEND = "send"  # confirmed: tell them
    BACK = "back"


class BreachCb(CallbackData, prefix="v1breach"):
    id: int
    action: BreachAction  # NOTIFIED: the only authority of a single-law pack


class BreachAuthorityCb(CallbackData, prefix="v1breachlaw"):
    """Staff sent the notice to the authority of one of the pack's laws (a law id)."""

    id: int
    law: str


def parse_id(text: str) -> int | None:
    """A decimal ID typed by a person (ASCII digits only: '²³'.isdigit() is true), in range."""
    if not text or len(text) > 16 or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= MAX_ID else None
