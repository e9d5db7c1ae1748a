"""The unit of work: `Repositories`, every repository over one session (one per update or
worker pass), and its `commit()`, after which outbox rows it added wake the outbox
(`on_outbox_commit`)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.fsm import FsmRow, current_scope
from storage.models import User
from storage.repositories.attachments import AttachmentRepository
from storage.repositories.audit import AuditRepository
from storage.repositories.breaches import BreachRepository
from storage.repositories.campaigns import CampaignRepository
from storage.repositories.consents import ConsentRepository
from storage.repositories.disclosures import DisclosureRepository
from storage.repositories.erasure import ErasureRepository
from storage.repositories.guardians import GuardianRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.requests import RequestRepository
from storage.repositories.roles import RoleRepository
from storage.repositories.state import BotStateRepository
from storage.repositories.stats import StatsRepository
from storage.repositories.systems import SystemJobRepository
from storage.repositories.templates import TemplateRepository
from storage.repositories.users import UserRepository

# The session info key of the callables `Repositories.commit` calls after outbox rows.
OUTBOX_LISTENERS = "outbox_listeners"
# ... and the callables it calls after rows for the systems' worker (`on_jobs_commit`).
JOB_LISTENERS = "job_listeners"


class Repositories:
    """Everything a handler may touch in the database, over one session (one per update)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.guardians = GuardianRepository(session)
        self.state = BotStateRepository(session)
        self.consents = ConsentRepository(session)
        self.audit = AuditRepository(session)
        self.campaigns = CampaignRepository(session)
        self.requests = RequestRepository(session)
        self.outbox = OutboxRepository(session)
        self.disclosures = DisclosureRepository(session)
        self.erasure = ErasureRepository(session)
        self.breaches = BreachRepository(session)
        self.roles = RoleRepository(session)
        self.attachments = AttachmentRepository(session)
        self.templates = TemplateRepository(session)
        self.stats = StatsRepository(session)
        self.jobs = SystemJobRepository(session)

    async def load_sender(self, user_id: int, fsm_key: str) -> tuple[User | None, FsmRow]:
        """The sender and their FSM row at the start of an update, in one statement."""
        user, fsm, represents = await self.users.load(user_id, fsm_key)
        self.guardians.represents[user_id] = represents
        return user, fsm

    async def commit(self) -> None:
        """Commit this unit of work, with the conversation (FSM) changes of the update; once
        committed, outbox rows it added wake the outbox (`on_outbox_commit`)."""
        scope = current_scope()
        if scope is not None and scope.session is self.session and scope.changed:
            await scope.flush()
        await self.session.commit()
        self.consents.committed()
        if self.outbox.added:
            self.outbox.added = False
            for listener in self.session.info.get(OUTBOX_LISTENERS, ()):
                listener()
        if self.jobs.added:
            self.jobs.added = False
            for listener in self.session.info.get(JOB_LISTENERS, ()):
                listener()


def on_outbox_commit(
    sessions: async_sessionmaker[AsyncSession], listener: Callable[[], None]
) -> None:
    """Call `listener` after every commit, over a session of `sessions`, that added outbox
    rows: the outbox worker is woken by the commit itself, never by hand."""
    sessions.kw["info"].setdefault(OUTBOX_LISTENERS, []).append(listener)


def on_jobs_commit(
    sessions: async_sessionmaker[AsyncSession], listener: Callable[[], None]
) -> None:
    """Call `listener` after every commit, over a session of `sessions`, that added jobs due
    now for the operator's systems (the systems' worker wakes by the commit)."""
    sessions.kw["info"].setdefault(JOB_LISTENERS, []).append(listener)
