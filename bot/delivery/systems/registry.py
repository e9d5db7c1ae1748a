"""The registry of connectors: one per system of the pack whose environment variables are set
(sql: `url_env`; webhook: `url_env` and `secret_env`), built through a factory that maps each
kind to its constructor. The constructors import their modules only when a system of that kind
is configured; a kind whose module is missing is "not connected" (logged once). A system whose
variables are not set is not connected either: its jobs become items staff do by hand, marked
so, and staff are told once at start (`tell_unconnected`). Every connected system's `check()`
runs at start: a problem stops the start with one line per problem (`problems`).

Nothing read from the environment is logged: not a URL, not a secret."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.i18n import translator
from bot.core.policy import PolicyPack
from bot.core.systems import System, SystemKind
from bot.domain.requests.carrying import Connected
from bot.domain.systems import Connector
from storage.enums import OutboxKind
from storage.repositories import Repositories

log = logging.getLogger(__name__)
# The set of systems staff were last told are not connected (bot_state, compare-and-set).
UNCONNECTED_KEY = "systems:unconnected"


@dataclass(frozen=True)
class Wiring:
    """What a connector is built from: the values of the system's environment variables, the
    pseudonym secret (an sql system's keyed hash) and the web server's callback address."""

    url: str
    secret: str | None
    pseudonym_secret: str
    callback_url: str | None


Constructor = Callable[[System, Wiring], Connector]
Factory = Mapping[SystemKind, Constructor]


def _sql(system: System, wiring: Wiring) -> Connector:
    from bot.delivery.systems.sql import SqlConnector  # type: ignore[import-not-found]

    connector: Connector = SqlConnector(system, wiring.url, wiring.pseudonym_secret)
    return connector


def _webhook(system: System, wiring: Wiring) -> Connector:
    from bot.delivery.systems.webhook import WebhookConnector  # type: ignore[import-not-found]

    connector: Connector = WebhookConnector(system, wiring.url, wiring.secret, wiring.callback_url)
    return connector


DEFAULT_FACTORY: Factory = {SystemKind.SQL: _sql, SystemKind.WEBHOOK: _webhook}


class Registry:
    """The connectors of this process, by system id; the pack's other systems are manual or
    not connected."""

    def __init__(self, pack: PolicyPack, connectors: dict[str, Connector]) -> None:
        self._pack = pack
        self.connectors = connectors

    @classmethod
    def build(
        cls,
        pack: PolicyPack,
        environ: Mapping[str, str],
        *,
        pseudonym_secret: str,
        callback_url: str | None = None,
        factory: Factory | None = None,
    ) -> Registry:
        factory = DEFAULT_FACTORY if factory is None else factory
        connectors: dict[str, Connector] = {}
        for system in pack.systems:
            if system.kind is SystemKind.MANUAL:
                continue
            url = environ.get(system.url_env or "")
            secret = environ.get(system.secret_env or "") if system.secret_env else None
            if not url or (system.secret_env and not secret):
                log.info(
                    "System %s is not connected: its environment variables are not set", system.id
                )
                continue
            constructor = factory.get(system.kind)
            try:
                if constructor is None:
                    raise ModuleNotFoundError(system.kind)
                wiring = Wiring(url, secret, pseudonym_secret, callback_url)
                connectors[system.id] = constructor(system, wiring)
            except ModuleNotFoundError:
                log.warning(
                    "System %s is not connected: this build has no %s connector",
                    system.id,
                    system.kind,
                )
        return cls(pack, connectors)

    @property
    def connected(self) -> Connected:
        return Connected(frozenset(self.connectors))

    def connector(self, system_id: str) -> Connector | None:
        return self.connectors.get(system_id)

    def unconnected(self) -> list[System]:
        """The pack's systems reached through the environment that this process does not reach."""
        return [
            s
            for s in self._pack.systems
            if s.kind is not SystemKind.MANUAL and s.id not in self.connectors
        ]

    async def problems(self) -> list[str]:
        """Every connected system's check, one line per problem, each naming its system (a
        check that raises is one problem, named by the error's type: its text may hold a URL)."""
        lines: list[str] = []
        for system_id, connector in self.connectors.items():
            try:
                found = await connector.check()
            except Exception as error:  # a check must not crash the start without its line
                found = [f"the check failed ({type(error).__name__})"]
            lines += [f"system {system_id}: {line}" for line in found]
        return lines

    async def close(self) -> None:
        for connector in self.connectors.values():
            try:
                await connector.close()
            except Exception:
                log.warning("Closing a system's connector failed", exc_info=False)


async def tell_unconnected(
    registry: Registry,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    staff_locale: str,
) -> bool:
    """Staff are told once which systems are not connected (their items are done by hand):
    once per set of such systems, whichever instance starts first (a compare-and-set in
    bot_state). True when told now."""
    missing = registry.unconnected()
    if not missing:
        return False
    t = translator(staff_locale)
    ids = ",".join(sorted(s.id for s in missing))
    async with sessions() as session:
        repo = Repositories(session)
        if not await repo.state.claim(UNCONNECTED_KEY, ids):
            await session.rollback()
            return False
        names = "\n".join(
            f"• {escape(s.name.get(t.locale))} (<code>{s.id}</code>: "
            f"<code>{' '.join(filter(None, (s.url_env, s.secret_env)))}</code>)"
            for s in missing
        )
        text = t("carrying.unconnected", systems=names)
        await repo.outbox.add(kind=OutboxKind.NOTICE, text=text, now=clock.now())
        await repo.commit()  # the claim and the notice, together
    return True
