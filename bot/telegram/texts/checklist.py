"""The checklist on the card of a request carried out in the operator's systems: one line per
system (waiting, done with the rows read or changed, failed and why, to do by hand, held until
a date, cancelled), and a DPO's explanation when the rest was explained. Within CHECKLIST_ROOM
characters, then how many more: the card fits one message whatever the number of systems."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

from bot.core.formatting import fmt_date, fmt_datetime
from bot.core.i18n import Translator
from bot.core.policy import PolicyPack
from storage.enums import JobStatus
from storage.models import RequestMessage
from storage.models_systems import SystemJob
from storage.repositories.systems import HELD, NOT_CONNECTED

CHECKLIST_ROOM = 1500
NAME_ROOM = 60  # a system's name on one line
REASON_ROOM = 120  # a failure's reason on one line


def names_of(
    pack: PolicyPack, t: Translator, recipients: dict[str, str] | None = None
) -> dict[str, str]:
    """Each job's name: the pack's systems, and the recipients to tell of an erasure or a
    correction (`recipient:<id>` -> who, as /disclose recorded it)."""
    names = {s.id: s.name.get(t.locale) for s in pack.systems}
    for job_id, recipient in (recipients or {}).items():
        names[job_id] = t("carrying.recipient", name=recipient)
    return names


def _rows(job: SystemJob) -> int:
    counts = json.loads(job.counts) if job.counts else {}
    return sum(int(v) for v in counts.values())


def job_line(job: SystemJob, name: str, pack: PolicyPack, t: Translator) -> str:
    zone = pack.zone
    name = escape(name[:NAME_ROOM])
    reason = escape((job.last_error or "")[:REASON_ROOM])
    match job.status:
        case JobStatus.DONE if job.done_by is not None:
            when = fmt_datetime(job.done_at, t, zone) if job.done_at else "—"
            return t("carrying.line_ticked", system=name, staff=job.done_by, when=when)
        case JobStatus.DONE:
            return t("carrying.line_done", system=name, rows=_rows(job))
        case JobStatus.FAILED:
            return t("carrying.line_failed", system=name, reason=reason)
        case JobStatus.MANUAL if job.last_error == NOT_CONNECTED:
            return t("carrying.line_unconnected", system=name)
        case JobStatus.MANUAL:
            return t("carrying.line_manual", system=name)
        case JobStatus.CANCELLED:
            return t("carrying.line_cancelled", system=name)
        case JobStatus.WAITING:
            return t("carrying.line_callback", system=name)
        case JobStatus.PENDING if job.last_error == HELD:
            when = fmt_date(job.next_attempt_at, t, zone)
            return t("carrying.line_held", system=name, when=when)
        case JobStatus.PENDING if job.last_error:
            return t("carrying.line_retrying", system=name, reason=reason)
        case _:
            return t("carrying.line_waiting", system=name)


def checklist_lines(
    jobs: Sequence[SystemJob],
    pack: PolicyPack,
    t: Translator,
    explained: Sequence[RequestMessage] = (),
    names: dict[str, str] | None = None,
) -> list[str]:
    """`names`: each job's name (`names_of`, with the recipients to tell)."""
    if not jobs:
        return []
    names = names if names is not None else names_of(pack, t)
    lines = [t("carrying.title")]
    used = 0
    for shown, job in enumerate(jobs):
        line = job_line(job, names.get(job.system_id, job.system_id), pack, t)
        if shown and used + len(line) > CHECKLIST_ROOM:
            lines.append(t("carrying.more", count=len(jobs) - shown))
            break
        lines.append(line)
        used += len(line) + 1
    for said in explained[-1:]:
        when = fmt_datetime(said.at, t, pack.zone)
        text = escape(said.text[:500])
        lines.append(t("carrying.explained", staff=said.staff_id, when=when, reason=text))
    return lines
