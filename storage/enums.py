"""The stored vocabularies: every kind and status string written into a row, in one place that
storage and `bot` both import. Each is a StrEnum whose values are exactly what the rows hold
(rows written before this module keep meaning what they meant): rename a member freely, never
change a value. Strings read back from the database compare equal to the members.

Not here: audit action names and subjects (legal evidence, spelled where they are written),
request types (the policy pack's `RequestType`), attachment kinds (`bot.domain.attachments`)."""

from __future__ import annotations

from enum import StrEnum


class OutboxKind(StrEnum):
    """What an outbox item delivers (`outbox.kind`); `bot.delivery.outbox` has a sender each."""

    CARD = "card"  # a request card (admin group)
    CARD_EDIT = "card_edit"  # the card re-rendered from the request's current state
    TO_USER = "to_user"  # a message about a request to its user
    TO_STAFF = "to_staff"  # a user's message relayed under the card
    TO_ADMIN = "to_admin"  # a text to the admin group
    NOTICE = "notice"  # the bot's own notice to staff (a failure is never re-announced)
    DUE_LIST = "due_list"  # the daily list, rendered at delivery with its pages
    REDACT = "redact"  # after an erasure: a card edited to the redacted text
    UNRELAY = "unrelay"  # after an erasure: a message relayed into the group deleted (or blanked)
    COPY_USER = "copy_user"  # staff's file copied to the user
    COPY_STAFF = "copy_staff"  # the user's file copied under the card
    TO_OWNER = "to_owner"  # a private message to an owner (OWNER_IDS): the desk lost its staff
    # The answer to an access or portability request carried out in the operator's systems:
    # rendered at delivery from the request's jobs (their collected data), to its user.
    SYSTEMS_ANSWER = "systems_answer"


# Items delivered into a user's chat (their lane is the chat; /healthz leaves them out).
TO_USER_KINDS = frozenset({OutboxKind.TO_USER, OutboxKind.COPY_USER, OutboxKind.SYSTEMS_ANSWER})
# Items threaded under one request's card (their lane is the card).
CARD_KINDS = frozenset(
    {OutboxKind.CARD, OutboxKind.CARD_EDIT, OutboxKind.TO_STAFF, OutboxKind.COPY_STAFF}
)
# Items about one message already posted (their lane is that message).
MESSAGE_KINDS = frozenset({OutboxKind.REDACT, OutboxKind.UNRELAY})
# Items for the admin group: while it cannot be reached they wait, and they are paced to
# Telegram's limit for one group.
STAFF_KINDS = frozenset(
    {
        OutboxKind.CARD,
        OutboxKind.CARD_EDIT,
        OutboxKind.TO_STAFF,
        OutboxKind.COPY_STAFF,
        OutboxKind.TO_ADMIN,
        OutboxKind.NOTICE,
        OutboxKind.DUE_LIST,
        OutboxKind.REDACT,
        OutboxKind.UNRELAY,
    }
)


class OutboxStatus(StrEnum):
    """Where an outbox item is (`outbox.status`)."""

    PENDING = "pending"  # waiting to be claimed (at `next_attempt_at`)
    SENDING = "sending"  # claimed; the call to Telegram may be under way
    SENT = "sent"
    FAILED = "failed"  # for good: Telegram would answer the same again
    BLOCKED = "blocked"  # the user blocked the bot


# Items still on their way: waiting, or being sent (both hold their lane).
OUTBOX_UNFINISHED = (OutboxStatus.PENDING, OutboxStatus.SENDING)
# Outbox items and deliveries that never reached their recipient (the failure metrics).
UNDELIVERED = frozenset({OutboxStatus.FAILED, OutboxStatus.BLOCKED})


class CampaignKind(StrEnum):
    """Who a campaign goes to and what it says (`campaigns.kind`)."""

    MARKETING = "marketing"  # to users who consent at the moment each message goes out
    POLICY = "policy"  # a policy change, to users not yet told of the version
    POLICY_NEXT = "policy_next"  # the next version, announced before its date (seed 002, 8.3)
    BREACH = "breach"  # tells the users a breach affects (GDPR art. 34)


class CampaignStatus(StrEnum):
    """`campaigns.status`: draft -> sending -> done, or draft -> cancelled."""

    DRAFT = "draft"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryStatus(StrEnum):
    """One campaign message to one user (`deliveries.status`)."""

    PENDING = "pending"  # queued, or back in the queue to be retried
    SENDING = "sending"  # claimed: written before the call to Telegram
    SENT = "sent"
    SKIPPED = "skipped"  # the recipient may not receive it at the claim
    FAILED = "failed"
    BLOCKED = "blocked"  # the user blocked the bot
    UNCERTAIN = "uncertain"  # a crash caught it mid-call: maybe delivered, never sent again


class RequestStatus(StrEnum):
    """A rights request's state (`requests.status`)."""

    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting_user"  # staff asked the user; the term runs on
    DONE = "done"
    REFUSED = "refused"
    BLOCKED = "blocked"  # a legal hold until `hold_until`, then erased
    # Approved; being carried out in the operator's systems (`system_jobs`): done when every
    # system is done, or when a DPO completes it with the rest explained.
    CARRYING_OUT = "carrying_out"


# The statuses of a request still being worked on (its term runs; /due lists it).
OPEN = frozenset(
    {
        RequestStatus.RECEIVED,
        RequestStatus.IN_PROGRESS,
        RequestStatus.WAITING,
        RequestStatus.CARRYING_OUT,
    }
)
# Open requests staff still decide on from the card (a request being carried out takes only
# its checklist's actions: retry, tick, complete with the rest explained).
DECIDABLE = OPEN - {RequestStatus.CARRYING_OUT}


class JobStatus(StrEnum):
    """One request carried out in one of the operator's systems (`system_jobs.status`)."""

    PENDING = "pending"  # waiting to be claimed (at `next_attempt_at`)
    RUNNING = "running"  # claimed: a worker is acting on the system
    WAITING = "waiting"  # a webhook system accepted it (202) and will call back
    DONE = "done"
    FAILED = "failed"  # failed past the retry limit: staff see why and may retry
    MANUAL = "manual"  # to be done by hand (a manual system, or one not connected): staff tick
    CANCELLED = "cancelled"  # a DPO completed the request with the rest explained


# Jobs whose system still owes its part.
JOBS_UNFINISHED = frozenset(
    {JobStatus.PENDING, JobStatus.RUNNING, JobStatus.WAITING, JobStatus.FAILED, JobStatus.MANUAL}
)


class AttachmentStatus(StrEnum):
    """A file sent with a request (`request_attachments.status`)."""

    PENDING = "pending"  # its copy is queued in the outbox
    RELAYED = "relayed"  # copied to its recipient
    FAILED = "failed"  # Telegram would not copy it


class MessageKind(StrEnum):
    """What a message said on a request is (`request_messages.kind`)."""

    REPLY = "reply"  # staff's answer to the user
    QUESTION = "question"  # staff asked; the due date stays
    CLARIFY = "clarify"  # staff asked to clarify identity or scope; the term restarts or pauses
    # A DPO's reason for a clarification beyond the agent's limit (staff only, on the card).
    CLARIFY_BEYOND = "clarify_beyond"
    REFUSAL = "refusal"
    REFUSAL_UNFOUNDED = "refusal_unfounded"  # manifestly unfounded or excessive (GDPR 12(5))
    EXTENSION = "extension"  # the term extended, with its reason (once per request)
    HOLD = "hold"  # a legal hold, with its reason
    ANSWER = "answer"  # the user's answer while staff waited for it
    FOLLOWUP = "followup"  # the user wrote again otherwise
    # A DPO completed a request being carried out with the rest explained (staff only).
    EXPLAINED = "explained"


# What staff asked the user, to be answered (the latest one decides how the term goes on).
STAFF_ASKS = (MessageKind.QUESTION, MessageKind.CLARIFY)


class RecordKind(StrEnum):
    """What a pseudonymous record kept after an erasure is (`erasure_records.kind`)."""

    REQUEST = "request"  # a request of the person's (number, type, dates; no content)
    MARKETING_SENT = "marketing_sent"  # a campaign message they were sent, with its consent
    ERASED = "erased"  # the erasure itself, with its cause
