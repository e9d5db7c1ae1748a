"""A request's card as the admin group shows it: its text and its buttons, rendered from the
request's current state. The outbox posts and edits it (`senders`); the desk app shows the
same text and offers the same actions (bot.service.desk_app)."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import InlineKeyboardMarkup

from bot.core.clock import Clock
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from bot.domain.requests.carrying import recipient_names
from bot.domain.requests.rules import card_notes, extension_refusal
from bot.telegram import keyboards
from bot.telegram.texts.checklist import checklist_lines, names_of
from bot.telegram.texts.requests import card_text
from storage.enums import MessageKind
from storage.models import Request
from storage.repositories import Repositories

# Requests whose outcome each recipient of a disclosure must be told of (GDPR art. 19).
TELL_RECIPIENTS = frozenset({"erasure", "rectification", "restriction"})


async def app_link(bot: Bot, short_name: str, request_id: int) -> str | None:
    """The card's "Open in the app" link (WEBAPP_SHORT_NAME): `t.me/<bot>/<app>?startapp=`,
    the request's number only. None without a short name (or while the bot's name is unknown)."""
    if not short_name:
        return None
    try:
        me = await bot.me()  # asked once at start, cached
    except TelegramAPIError:
        return None
    if not me.username:
        return None
    return f"https://t.me/{me.username}/{short_name}?startapp=req_{request_id}"


async def render_card(
    repo: Repositories,
    pack: PolicyPack,
    clock: Clock,
    t: Translator,
    request: Request,
    link: str | None = None,
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The card's text and keyboard; `link`: the app's URL for this request (app_link)."""
    user = await repo.users.get(request.user_id)
    recipients: list[str] = []
    if user is not None and request.type in TELL_RECIPIENTS:
        disclosed = await repo.disclosures.of_user(user.id)
        recipients = list(dict.fromkeys(d.recipient for d in disclosed))
    notes = await card_notes(repo, pack, request)
    jobs = await repo.jobs.of_request(request.id) if pack.systems else []
    explained = await repo.requests.said_all(request.id, MessageKind.EXPLAINED) if jobs else []
    told = await recipient_names(repo, request.user_id) if jobs else {}
    names = names_of(pack, t, told)
    checklist = checklist_lines(jobs, pack, t, explained, names)
    text = card_text(request, user, pack, t, recipients, notes, checklist)
    extend = await extension_refusal(repo, pack, request, clock.now()) is None
    grounds = pack.grounds_for(request.type)
    markup = keyboards.card(
        request, t, extend=extend, grounds=grounds, jobs=jobs, names=names, app=link
    )
    return text, markup
