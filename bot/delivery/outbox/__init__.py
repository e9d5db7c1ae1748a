"""Delivers what the database says must be delivered: request cards to the admin group (into a
topic per request type when the group is a forum), card edits, messages to users and staff, the
daily list, redactions after an erasure.

Guarantees (README, "Delivery guarantees"):
- An item is claimed with one conditional UPDATE (PostgreSQL reads the candidate with FOR UPDATE
  SKIP LOCKED), so any number of workers and processes on one database never send it twice at
  the same time, nor wait for each other's claims.
- Lanes: items to one user, about one card, or to one other chat keep their order (only the
  head of a lane is ever claimed, by any instance); a waiting or failed item never holds
  another lane.
- Errors are decided: network trouble, 5xx and 429 are retried with a capped backoff; an error
  Telegram would repeat (a 400) ends the item as `failed` at once, is logged with the item ID
  and shown to staff. The admin group refusing the bot (a 403 there, "chat not found", a right
  taken away) is the desk's "staff unreachable" state (`bot.domain.staff_reach`): every item to
  staff waits for it in order, none is failed.
- Paced: items to the admin group take its send slot (`pacing`), under Telegram's limit of
  about 20 messages a minute in one group, across every instance.
- At least once: an item a crash left `sending` is sent again after the lease, marked as a
  possible repeat; a card sent again is the card from then on (its new message ID is recorded).

The package: `engine` (the queue: claim, lease, backoff, lanes, the worker loop and its wake),
`senders` (one function per `storage.enums.OutboxKind`, looked up in `SENDERS`; `context`, what
they share), `answer` (the access answer with the data from the operator's systems), `topics` (the
admin group's forum topics), `errors` (what Telegram's answers mean for an item), `pacing` (the
admin group's send slot).
"""

from bot.delivery.outbox.engine import (
    BASE_DELAY,
    LEASE,
    MAX_BACKOFF,
    MAX_EXPONENT,
    PASS_ITEMS,
    POLL_SECONDS,
    Outbox,
    backoff,
)
from bot.delivery.outbox.errors import ErasedMeanwhile, Permanent
from bot.delivery.outbox.pacing import GroupPace
from bot.delivery.outbox.senders import SENDERS

__all__ = [
    "BASE_DELAY",
    "LEASE",
    "MAX_BACKOFF",
    "MAX_EXPONENT",
    "PASS_ITEMS",
    "POLL_SECONDS",
    "SENDERS",
    "ErasedMeanwhile",
    "GroupPace",
    "Outbox",
    "Permanent",
    "backoff",
]
