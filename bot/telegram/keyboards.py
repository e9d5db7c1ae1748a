"""Inline keyboards. Labels come from the locale catalogs."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.core.formatting import authority_word
from bot.core.i18n import LOCALES, Translator, translator
from bot.core.law import Law
from bot.core.policy import PolicyPack, RefusalGround, RequestType
from bot.domain.consents import ConsentView
from bot.domain.onboarding import AgeGroup
from bot.telegram.callbacks import (
    AgeCb,
    BreachAction,
    BreachAuthorityCb,
    BreachCb,
    CampaignAction,
    CampaignCb,
    ConsentAction,
    ConsentCb,
    GroundCb,
    GuardianAction,
    GuardianCb,
    JobAction,
    JobCb,
    LangCb,
    MenuAction,
    MenuCb,
    RequestAction,
    RequestCb,
    RightsAction,
    RightsCb,
    TemplateCb,
    UnsubCb,
)
from storage.enums import JOBS_UNFINISHED, OPEN, JobStatus, RequestStatus
from storage.models import AnswerTemplate, Request
from storage.models_systems import SystemJob

# The checklist's buttons on one card at most (Telegram allows 100 buttons; the card's text
# says how many systems there are).
MAX_JOB_BUTTONS = 40


class Buttons:
    """Inline buttons laid out in rows, like aiogram's InlineKeyboardBuilder without its deep
    copy of every button on each addition (the largest item of rendering a screen)."""

    WIDTH = 8  # Telegram's widest row, the builder's default layout

    def __init__(self) -> None:
        self._buttons: list[InlineKeyboardButton] = []
        self._sizes: tuple[int, ...] = (self.WIDTH,)

    def button(
        self, *, text: str, callback_data: CallbackData | None = None, url: str | None = None
    ) -> None:
        data = callback_data.pack() if callback_data is not None else None
        self._buttons.append(InlineKeyboardButton(text=text, callback_data=data, url=url))

    def adjust(self, *sizes: int) -> None:
        """Rows of `sizes` buttons, the last size repeated for the rest."""
        self._sizes = sizes

    def as_markup(self) -> InlineKeyboardMarkup:
        rows: list[list[InlineKeyboardButton]] = []
        index, sizes = 0, list(self._sizes)
        while index < len(self._buttons):
            size = sizes.pop(0) if len(sizes) > 1 else sizes[0]
            rows.append(self._buttons[index : index + size])
            index += size
        return InlineKeyboardMarkup(inline_keyboard=rows)


def age_gate(t: Translator, answers: list[AgeGroup], pack: PolicyPack) -> InlineKeyboardMarkup:
    builder = Buttons()
    if pack.policy.url:  # the full policy before the first answer (Law 99-Z art. 17)
        builder.button(text=t("notice.full_text"), url=pack.policy.url)
    age = pack.age.consent_age
    for answer in answers:
        builder.button(text=t(f"age.{answer}", age=age), callback_data=AgeCb(answer=answer))
    other = "en" if t.locale == "ru" else "ru"
    builder.button(text=t("age.switch_language"), callback_data=LangCb(code=other))
    builder.adjust(1)
    return builder.as_markup()


def notice(t: Translator, pack: PolicyPack) -> InlineKeyboardMarkup | None:
    """The full text, and every earlier version (they stay viewable)."""
    rows = []
    if pack.policy.url:  # not published at an address: no button (the notice says so)
        rows.append([InlineKeyboardButton(text=t("notice.full_text"), url=pack.policy.url)])
    for old in reversed(pack.policy.history):
        if old.url is None:
            continue
        date = old.effective_date.strftime(t("common.date_format")) if old.effective_date else "—"
        label = t("policy_update.previous", version=old.version, date=date)
        rows.append([InlineKeyboardButton(text=label, url=old.url)])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def next_policy(t: Translator, pack: PolicyPack) -> InlineKeyboardMarkup | None:
    upcoming = pack.next_policy
    if upcoming is None:
        return None
    button = InlineKeyboardButton(text=t("notice.full_text"), url=upcoming.url)
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def menu(t: Translator, *, guardian_link: bool) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=t("menu.rights"), callback_data=MenuCb(action=MenuAction.RIGHTS))
    builder.button(text=t("menu.requests"), callback_data=MenuCb(action=MenuAction.REQUESTS))
    builder.button(text=t("menu.consents"), callback_data=MenuCb(action=MenuAction.CONSENTS))
    builder.button(text=t("menu.notice"), callback_data=MenuCb(action=MenuAction.NOTICE))
    if guardian_link:
        builder.button(
            text=t("menu.guardian_link"), callback_data=MenuCb(action=MenuAction.GUARDIAN_LINK)
        )
    builder.button(text=t("menu.language"), callback_data=MenuCb(action=MenuAction.LANGUAGE))
    builder.button(text=t("menu.help"), callback_data=MenuCb(action=MenuAction.HELP))
    builder.adjust(1)
    return builder.as_markup()


def new_guardian_link(t: Translator) -> InlineKeyboardMarkup:
    """Under a refused grant: a new link for the representative (the old one is voided)."""
    builder = Buttons()
    builder.button(
        text=t("guardian.get_link"), callback_data=MenuCb(action=MenuAction.GUARDIAN_LINK)
    )
    return builder.as_markup()


def settings(t: Translator) -> InlineKeyboardMarkup:
    """/settings: the language switch and the consents, each its usual screen."""
    builder = Buttons()
    builder.button(text=t("menu.language"), callback_data=MenuCb(action=MenuAction.LANGUAGE))
    builder.button(text=t("menu.consents"), callback_data=MenuCb(action=MenuAction.CONSENTS))
    builder.button(text=t("common.back"), callback_data=MenuCb(action=MenuAction.HOME))
    builder.adjust(1)
    return builder.as_markup()


def back_to_menu(t: Translator) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=t("common.back"), callback_data=MenuCb(action=MenuAction.HOME))
    return builder.as_markup()


def languages(t: Translator) -> InlineKeyboardMarkup:
    builder = Buttons()
    for code in LOCALES:  # each language named in itself, so a new file brings its own name
        builder.button(text=translator(code)(f"language.{code}"), callback_data=LangCb(code=code))
    builder.button(text=t("common.back"), callback_data=MenuCb(action=MenuAction.HOME))
    builder.adjust(2, 1)
    return builder.as_markup()


def guardian_age(t: Translator, age: int) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(
        text=t("guardian.adult", age=age), callback_data=GuardianCb(action=GuardianAction.ADULT)
    )
    builder.button(
        text=t("guardian.minor", age=age), callback_data=GuardianCb(action=GuardianAction.MINOR)
    )
    builder.button(text=t("common.cancel"), callback_data=GuardianCb(action=GuardianAction.CANCEL))
    builder.adjust(1)
    return builder.as_markup()


def guardian_confirm(t: Translator) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(
        text=t("guardian.confirm"), callback_data=GuardianCb(action=GuardianAction.CONFIRM)
    )
    builder.button(text=t("common.cancel"), callback_data=GuardianCb(action=GuardianAction.CANCEL))
    builder.adjust(1)
    return builder.as_markup()


def consents(
    views: list[ConsentView],
    t: Translator,
    *,
    minor_self: bool,
    minor: int = 0,
    minors: list[tuple[int, str]] | None = None,
) -> InlineKeyboardMarkup:
    """`minor_self`: a minor's own screen (withdraw only); `minor`: a representative's screen."""
    builder = Buttons()
    for view in views:
        title = view.purpose.title.get(t.locale)
        if minor_self and not view.granted:
            label, action = t("consents.button_locked", title=title), ConsentAction.LOCKED
        elif view.needs_reconfirm and not minor_self:
            label, action = t("consents.button_reconfirm", title=title), ConsentAction.INFO
        elif view.granted:
            label, action = t("consents.button_on", title=title), ConsentAction.WITHDRAW
        else:
            label, action = t("consents.button_off", title=title), ConsentAction.INFO
        builder.button(
            text=label, callback_data=ConsentCb(action=action, purpose=view.purpose.id, minor=minor)
        )
    for minor_id, name in minors or []:
        builder.button(
            text=t("consents.for_minor", name=name),
            callback_data=ConsentCb(action=ConsentAction.LIST, minor=minor_id),
        )
    builder.button(
        text=t("consents.history"),
        callback_data=ConsentCb(action=ConsentAction.HISTORY, minor=minor),
    )
    if minor:
        builder.button(text=t("common.back"), callback_data=ConsentCb(action=ConsentAction.LIST))
    else:
        builder.button(text=t("common.back"), callback_data=MenuCb(action=MenuAction.HOME))
    builder.adjust(1)
    return builder.as_markup()


def minor_consents(t: Translator, minor_id: int, name: str) -> InlineKeyboardMarkup:
    """For the representative: the minor's consents, where each purpose is given one by one."""
    builder = Buttons()
    builder.button(
        text=t("guardian.open_consents", minor=name),
        callback_data=ConsentCb(action=ConsentAction.LIST, minor=minor_id),
    )
    return builder.as_markup()


def consent_info(purpose_id: str, t: Translator, *, minor: int = 0) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(
        text=t("consents.agree"),
        callback_data=ConsentCb(action=ConsentAction.GRANT, purpose=purpose_id, minor=minor),
    )
    builder.button(
        text=t("common.back"), callback_data=ConsentCb(action=ConsentAction.LIST, minor=minor)
    )
    builder.adjust(1)
    return builder.as_markup()


def back_to_consents(t: Translator, *, minor: int = 0) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(
        text=t("common.back"), callback_data=ConsentCb(action=ConsentAction.LIST, minor=minor)
    )
    return builder.as_markup()


def unsubscribe(t: Translator, campaign_id: int, *, done: bool = False) -> InlineKeyboardMarkup:
    key = "unsubscribe.done_button" if done else "unsubscribe.button"
    builder = Buttons()
    builder.button(text=t(key), callback_data=UnsubCb(campaign=campaign_id))
    return builder.as_markup()


def campaign_preview(t: Translator, campaign_id: int) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(
        text=t("staff.campaign_send"),
        callback_data=CampaignCb(id=campaign_id, action=CampaignAction.SEND),
    )
    builder.button(
        text=t("staff.campaign_cancel"),
        callback_data=CampaignCb(id=campaign_id, action=CampaignAction.CANCEL),
    )
    return builder.as_markup()


def card(
    request: Request,
    t: Translator,
    *,
    extend: bool = False,
    grounds: Sequence[RefusalGround] = (),
    jobs: Sequence[SystemJob] = (),
    names: dict[str, str] | None = None,
    app: str | None = None,
) -> InlineKeyboardMarkup | None:
    """Buttons for what can still be done with the request, and `app`, the desk app's link for
    it (a URL button: Web App buttons are not allowed in groups); none once it is closed. A refusal
    is a button per ground the pack's law gives for the request's type (`grounds`). While the
    operator's systems carry it out, only the checklist's: retry a failed system, tick one done
    by hand (`names`: each system's name), a DPO's completion with the rest explained."""
    markup = _card(request, t, extend, grounds, jobs, names)
    if app is None:
        return markup
    rows = [] if markup is None else list(markup.inline_keyboard)
    rows.append([InlineKeyboardButton(text=t("desk_server.open_in_app"), url=app)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _card(
    request: Request,
    t: Translator,
    extend: bool,
    grounds: Sequence[RefusalGround],
    jobs: Sequence[SystemJob],
    names: dict[str, str] | None,
) -> InlineKeyboardMarkup | None:
    if request.status == RequestStatus.CARRYING_OUT:
        return _checklist(request, t, jobs, names or {})
    if (
        request.type == "restriction"
        and request.status == RequestStatus.DONE
        and request.hold_until
    ):
        lift = RequestCb(id=request.id, action=RequestAction.LIFT)
        return InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text=t("card.button_lift"), callback_data=lift.pack())]
            ]
        )
    if request.status not in OPEN:
        return None
    builder = Buttons()
    first = [RequestAction.DONE]
    if request.status == RequestStatus.RECEIVED:
        first.insert(0, RequestAction.TAKE)
    then = [RequestAction.QUESTION, RequestAction.CLARIFY, RequestAction.BLOCK]
    if extend:
        then.append(RequestAction.EXTEND)
    for action in first:
        _card_action(builder, request, action, t)
    for ground in grounds:
        builder.button(
            text=t("card.button_ground", ground=ground.title.get(t.locale)),
            callback_data=GroundCb(id=request.id, ground=ground.id),
        )
    for action in then:
        _card_action(builder, request, action, t)
    builder.button(
        text=t("templates.button"),
        callback_data=RequestCb(id=request.id, action=RequestAction.TEMPLATE),
    )
    builder.adjust(3)
    return builder.as_markup()


def _checklist(
    request: Request, t: Translator, jobs: Sequence[SystemJob], names: dict[str, str]
) -> InlineKeyboardMarkup:
    builder = Buttons()
    shown = 0
    for job in jobs:
        if shown >= MAX_JOB_BUTTONS:
            break
        if job.status == JobStatus.FAILED:
            key, action = "carrying.button_retry", JobAction.RETRY
        elif job.status == JobStatus.MANUAL:
            key, action = "carrying.button_tick", JobAction.TICK
        else:
            continue
        name = names.get(job.system_id, job.system_id)
        builder.button(
            text=t(key, system=name[:40]),
            callback_data=JobCb(request=request.id, job=job.id, action=action),
        )
        shown += 1
    if any(job.status in JOBS_UNFINISHED for job in jobs):
        _card_action(builder, request, RequestAction.EXPLAIN, t)
    builder.button(
        text=t("templates.button"),
        callback_data=RequestCb(id=request.id, action=RequestAction.TEMPLATE),
    )
    builder.adjust(1)
    return builder.as_markup()


def _card_action(builder: Buttons, request: Request, action: RequestAction, t: Translator) -> None:
    builder.button(
        text=t(f"card.button_{action.name.lower()}"),
        callback_data=RequestCb(id=request.id, action=action),
    )


def template_picker(
    templates: list[AnswerTemplate], request_id: int, t: Translator
) -> InlineKeyboardMarkup:
    builder = Buttons()
    for template in templates:
        builder.button(
            text=template.name, callback_data=TemplateCb(request=request_id, template=template.id)
        )
    builder.button(
        text=t("common.cancel"), callback_data=TemplateCb(request=request_id, template=0)
    )
    builder.adjust(1)
    return builder.as_markup()


def rights(kinds: list[RequestType], t: Translator) -> InlineKeyboardMarkup:
    builder = Buttons()
    for kind in kinds:
        builder.button(
            text=t(f"rights.button_{kind}"),
            callback_data=RightsCb(action=RightsAction.PICK, value=kind),
        )
    builder.button(text=t("common.back"), callback_data=MenuCb(action=MenuAction.HOME))
    builder.adjust(1)
    return builder.as_markup()


def flow_step(
    t: Translator, *, choices: list[tuple[str, str]] | None = None, optional: bool = False
) -> InlineKeyboardMarkup:
    builder = Buttons()
    for value, label in choices or []:
        builder.button(text=label, callback_data=RightsCb(action=RightsAction.CHOICE, value=value))
    if optional:
        builder.button(text=t("flow.skip"), callback_data=RightsCb(action=RightsAction.SKIP))
    builder.button(text=t("common.back"), callback_data=RightsCb(action=RightsAction.BACK))
    builder.button(text=t("common.cancel"), callback_data=RightsCb(action=RightsAction.CANCEL))
    builder.adjust(1)
    return builder.as_markup()


def flow_confirm(t: Translator) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(text=t("flow.submit"), callback_data=RightsCb(action=RightsAction.SUBMIT))
    builder.button(text=t("common.back"), callback_data=RightsCb(action=RightsAction.BACK))
    builder.button(text=t("common.cancel"), callback_data=RightsCb(action=RightsAction.CANCEL))
    builder.adjust(1)
    return builder.as_markup()


def share_contact(t: Translator) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=t("flow.share_contact"), request_contact=True)],
            [KeyboardButton(text=t("common.cancel"))],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def breach(
    breach_id: int,
    t: Translator,
    pack: PolicyPack,
    *,
    pending: Sequence[Law],
    told: bool,
    affected: int,
) -> InlineKeyboardMarkup | None:
    """What is still to do about a breach: notify each authority not yet notified (one button
    per law where the pack is under two), tell the affected users."""
    builder = Buttons()
    notified = not pending
    if len(pack.under) == 1 and pending:
        builder.button(
            text=t("breach.button_notified"),
            callback_data=BreachCb(id=breach_id, action=BreachAction.NOTIFIED),
        )
    elif pending:
        for law in pending:
            builder.button(
                text=t(
                    "breach.button_notified_law",
                    term=authority_word(law.words or pack.terms, t),
                    days=law.breach.days,
                    kind=t(f"card.days_{law.breach.kind}", days=law.breach.days),
                ),
                callback_data=BreachAuthorityCb(id=breach_id, law=law.id),
            )
    if not told and affected:
        builder.button(
            text=t("breach.button_tell", count=affected),
            callback_data=BreachCb(id=breach_id, action=BreachAction.TELL),
        )
    builder.adjust(1)
    return builder.as_markup() if not (notified and (told or not affected)) else None


def breach_confirm(breach_id: int, t: Translator, affected: int) -> InlineKeyboardMarkup:
    builder = Buttons()
    builder.button(
        text=t("breach.button_send", count=affected),
        callback_data=BreachCb(id=breach_id, action=BreachAction.SEND),
    )
    builder.button(
        text=t("common.back"), callback_data=BreachCb(id=breach_id, action=BreachAction.BACK)
    )
    builder.adjust(1)
    return builder.as_markup()
