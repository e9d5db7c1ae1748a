"""What the senders share for the worker's lifetime (apart from `senders`, so a sender in a
module of its own, `answer`, needs no import of `senders`)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.delivery.outbox.topics import ForumTopics
from bot.domain.admin_chat import AdminChat


@dataclass(frozen=True)
class SendContext:
    """What the senders share for the worker's lifetime."""

    clock: Clock
    pack: PolicyPack
    admin_chat: AdminChat
    t: Translator  # staff's language
    topics: ForumTopics
    app_short_name: str = ""  # WEBAPP_SHORT_NAME: the cards' "Open in the app" link
