"""The machine-readable export of everything the bot holds about a person (schema version 2,
bot/export_schema.json). It answers access and portability requests and /export. Version 2 adds
`systems`: the data collected from the operator's own systems (the pack's `[[systems]]`), per
system and category with each record's source, as long as the bot still holds it; a version 1
file is version 2 without `systems`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.core.clock import Clock
from bot.core.policy import PolicyPack
from bot.domain.systems import COLLECTS, stored_done
from storage.enums import JobStatus
from storage.models import Request, User
from storage.models_systems import SystemJob
from storage.repositories import Repositories

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "export_schema.json"
VERSION = 2


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def build_export(
    repo: Repositories,
    user: User,
    pack: PolicyPack,
    clock: Clock,
    *,
    request_id: int | None = None,
) -> dict[str, Any]:
    """Everything held about `user`. `request_id`: the answer to that access or portability
    request, whose `systems` are its own jobs (also those done by hand or not carried out);
    without it (/export), each system's latest collected data the bot still holds."""
    states = await repo.consents.states(user.id)
    ledger = await repo.consents.ledger_of(user.id)
    requests = []
    own = await repo.requests.of_user(user.id)
    jobs = await repo.jobs.of_user(user.id)
    for request in reversed(own):
        messages = await repo.requests.messages(request.id)
        requests.append(
            {
                "number": request.id,
                "type": request.type,
                "status": request.status,
                "received_at": _iso(request.received_at),
                "due_at": _iso(request.due_at),
                "closed_at": _iso(request.closed_at),
                "details": json.loads(request.details),
                "reason": request.reason,
                "messages": [
                    {"at": _iso(m.at), "author": m.author, "kind": m.kind, "text": m.text}
                    for m in messages
                ],
                "attachments": [
                    {"at": _iso(a.at), "author": a.author, "type": a.kind, "size": a.size}
                    for a in await repo.attachments.of_request(request.id)
                ],
            }
        )
    representatives = await repo.guardians.confirmations_of(user.id)
    represented = await repo.guardians.confirmations_by(user.id)
    return {
        "schema": "privacy-desk-export",
        "version": VERSION,
        "generated_at": _iso(clock.now()),
        "operator": {
            "name": pack.operator.legal_name.get(user.language),
            "policy_version": pack.policy.version,
            "policy_url": pack.policy.url,
        },
        "profile": {
            "telegram_id": user.id,
            "username": user.username,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "language": user.language,
            "created_at": _iso(user.created_at),
            "restricted_until": _iso(user.restricted_until),
        },
        "age_gate": {"answer": user.age_group, "answered_at": _iso(user.age_answered_at)},
        "phone": (
            {"number": user.phone, "verified_at": _iso(user.phone_verified_at)}
            if user.phone and user.phone_verified_at
            else None
        ),
        "notice": {"version": user.notice_version, "shown_at": _iso(user.notice_shown_at)},
        "legal_representatives": [
            {
                "telegram_id": c.guardian_id,
                "confirmed_at": _iso(c.confirmed_at),
                "policy_version": c.policy_version,
            }
            for c in representatives
        ],
        "represents": [
            {"telegram_id": c.minor_id, "confirmed_at": _iso(c.confirmed_at)} for c in represented
        ],
        "consents": {
            "current": [
                {
                    "purpose": s.purpose,
                    "granted": s.granted,
                    "since": _iso(s.updated_at),
                    "policy_version": s.policy_version,
                }
                for s in states.values()
            ],
            "ledger": [
                {
                    "purpose": purpose,
                    "granted": granted,
                    "at": _iso(at),
                    "policy_version": version,
                    "source": source,
                    "text_id": text_id,
                }
                for purpose, granted, at, version, source, text_id in ledger
            ],
        },
        "requests": requests,
        "disclosures": [
            {
                "at": _iso(d.at),
                "recipient": d.recipient,
                "data": d.data,
                "legal_basis": d.legal_basis,
            }
            for d in await repo.disclosures.of_user(user.id)
        ],
        "systems": systems_part(pack, user.language, _collected(jobs, request_id), own),
    }


def _collected(jobs: list[SystemJob], request_id: int | None) -> list[SystemJob]:
    """The jobs whose results the export holds: the request's own, or each system's latest
    access or portability job whose data is not purged yet."""
    collecting = [j for j in jobs if j.action in COLLECTS]
    if request_id is not None:
        return [j for j in collecting if j.request_id == request_id]
    latest: dict[str, SystemJob] = {}
    for job in collecting:
        if job.status != JobStatus.DONE or job.data is None or job.done_at is None:
            continue
        seen = latest.get(job.system_id)
        if seen is None or (job.done_at, job.id) > (seen.done_at, seen.id):  # type: ignore[operator]
            latest[job.system_id] = job
    return sorted(latest.values(), key=lambda j: j.id)


def systems_part(
    pack: PolicyPack, language: str, jobs: list[SystemJob], requests: list[Request]
) -> list[dict[str, Any]]:
    """Per system: its name (in the person's language), its kind (`source`: how the bot reached
    it), when it was done, the records found per category, the tables whose rows the law keeps
    (with the pack's reason), whether staff did it by hand, and their note (for a system not
    carried out, the DPO's explanation)."""
    reasons = {r.id: r.reason for r in requests}
    part = []
    for job in jobs:
        system = pack.system(job.system_id)
        done = stored_done(job.data, None)
        kept = []
        for source in done.kept:
            table = system.table(source) if system is not None else None
            reason = table.keep.get(language) if table is not None and table.keep else None
            kept.append({"source": source, "reason": reason})
        note = job.note
        if note is None and job.status != JobStatus.DONE and job.request_id is not None:
            note = reasons.get(job.request_id)
        part.append(
            {
                "system": job.system_id,
                "name": system.name.get(language) if system is not None else job.system_id,
                "source": str(system.kind) if system is not None else None,
                "request": job.request_id,
                "status": job.status,
                "completed_at": _iso(job.done_at),
                "categories": done.found,
                "kept": kept,
                "by_hand": job.status == JobStatus.DONE and job.done_by is not None,
                "note": note,
            }
        )
    return part


LEDGER_MARK = "\u0000ledger\u0000"


def export_bytes(export: dict[str, Any]) -> bytes:
    """Indented JSON, each ledger event on one line: `indent` makes json use its pure-Python
    encoder (a second for 10,000 events), so the ledger's lines are encoded by the C one."""
    consents = export["consents"]
    ledger = consents["ledger"]
    shell = {**export, "consents": {**consents, "ledger": LEDGER_MARK}}
    text = json.dumps(shell, ensure_ascii=False, indent=2)
    lines = ",\n".join("      " + json.dumps(e, ensure_ascii=False) for e in ledger)
    body = "[\n" + lines + "\n    ]" if ledger else "[]"
    return text.replace(json.dumps(LEDGER_MARK), body, 1).encode("utf-8")
