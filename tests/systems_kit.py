"""Fake connectors for the operator's systems (`bot.domain.systems.Connector`), and the 99-Z
pack with three systems: `crm` (sql), `helpdesk` (webhook) and `archive` (manual). Each fake
answers what a test tells it (Done, Accepted, Failed, an exception, or waits), and records
every job it ran."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.systems import System, SystemKind
from bot.delivery.systems.registry import Wiring
from bot.domain.systems import Done, Outcome, Subject, Work
from tests.packs import PACKS, without_systems

SYSTEMS = """
[categories]
contact = { ru = "контактные данные", en = "contact details" }
billing = { ru = "платёжные данные", en = "billing data" }

[[systems]]
id = "crm"
name = { ru = "Клиентская база", en = "Customer database" }
kind = "sql"
categories = ["contact"]
url_env = "DESK_CRM_URL"

[[systems.tables]]
name = "accounts"
key = "id"
identity = { kind = "telegram_id", column = "tg_id" }
restrict = "restricted"
fields = [{ column = "name", category = "contact", corrects = "first_name" }]

[[systems]]
id = "helpdesk"
name = { ru = "Служба поддержки", en = "Helpdesk" }
kind = "webhook"
categories = ["contact"]
url_env = "DESK_HELP_URL"
secret_env = "DESK_HELP_SECRET"

[[systems]]
id = "archive"
name = { ru = "Бумажный архив", en = "Paper archive" }
kind = "manual"
categories = ["billing"]
instructions = { ru = "Найти папку клиента", en = "Find the customer's folder" }
"""
ENV = {
    "DESK_CRM_URL": "sqlite+aiosqlite:///unused.db",
    "DESK_HELP_URL": "https://helpdesk.invalid/jobs",
    "DESK_HELP_SECRET": "desk-test-secret",
}


def write_systems_pack(tmp_path: Path, name: str = "systems.toml") -> Path:
    source = (PACKS / "by_99z_sports.toml").read_text("utf-8")
    path = tmp_path / name
    path.write_text(without_systems(source) + SYSTEMS, "utf-8")
    return path


@dataclass
class FakeSystems:
    """What every fake connector of a test shares: the outcomes to give, per system (in turn;
    then Done), the problems its check finds, and what ran."""

    outcomes: dict[str, list[Outcome | BaseException | str]] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    runs: list[tuple[str, Work]] = field(default_factory=list)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)  # a system waits on its gate
    built: list[str] = field(default_factory=list)

    def factory(self) -> dict[SystemKind, Any]:
        def make(system: System, wiring: Wiring) -> FakeConnector:
            self.built.append(system.id)
            return FakeConnector(system, self)

        return {SystemKind.SQL: make, SystemKind.WEBHOOK: make}

    def ran(self, system_id: str) -> list[Work]:
        return [work for sid, work in self.runs if sid == system_id]

    def per_job(self) -> Counter[int]:
        return Counter(work.job_id for _, work in self.runs)


class FakeConnector:
    def __init__(self, system: System, fakes: FakeSystems) -> None:
        self._system = system
        self._fakes = fakes

    @property
    def system(self) -> System:
        return self._system

    async def run(self, work: Work) -> Outcome:
        gate = self._fakes.gates.get(self._system.id)
        if gate is not None:
            await gate.wait()
        self._fakes.runs.append((self._system.id, work))
        queue = self._fakes.outcomes.get(self._system.id, [])
        outcome = queue.pop(0) if queue else Done(counts={"accounts": 1})
        if isinstance(outcome, BaseException):
            raise outcome
        assert not isinstance(outcome, str)
        return outcome

    async def check(self) -> list[str]:
        return list(self._fakes.problems.get(self._system.id, []))

    async def dry_run(self, subject: Subject) -> list[str]:
        return []

    async def close(self) -> None:
        pass
