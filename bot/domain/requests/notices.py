"""What a user is told about their request, in their language: each step staff take (taken,
done, refused with where to complain, a question, an extension, a hold...) and the caption
of a file staff send them. Queued in the outbox by the lifecycle (`desk`)."""

from __future__ import annotations

from html import escape

from bot.core.formatting import complaint_text, fmt_date
from bot.core.i18n import translator
from bot.core.policy import PolicyPack
from bot.domain.attachments import fit_caption
from bot.domain.requests.catalogue import details_of
from storage.models import Request, User


def user_notice(request: Request, user: User, event: str, reason: str, pack: PolicyPack) -> str:
    """`requests.notify_<event>` for `user`; `reason` is already escaped for HTML."""
    t = translator(user.language)
    purpose = pack.purpose(details_of(request).get("purpose", ""))
    ground = pack.ground(request.type, request.refusal_ground or "")
    return t(
        f"requests.notify_{event}",
        id=request.id,
        type=t(f"rights.{request.type}"),
        reason=reason,
        due=fmt_date(request.due_at, t, pack.zone),
        until=fmt_date(request.hold_until, t, pack.zone) if request.hold_until else "",
        complaint=complaint_text(pack, t),
        purpose=escape(purpose.title.get(t.locale)) if purpose else "",
        ground=escape(ground.title.get(t.locale)) if ground else "",
        article=escape(ground.article.get(t.locale)) if ground else "",
    )


def staff_file_caption(request: Request, user: User, caption: str | None) -> str:
    """A staff member's file for the user: which request it is for, then their caption."""
    t = translator(user.language)
    header = t("attach.from_staff", id=request.id, type=t(f"rights.{request.type}"))
    return fit_caption(header, caption)
