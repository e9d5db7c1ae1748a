"""The end of a request carried out in the operator's systems, once no system owes its part
(every job done, or cancelled by a DPO's explanation): the bot's own part, then the person is
told. Each end is a compare-and-set `carrying_out` -> `done` in the transaction of its effects,
so two instances (or a pass run again after a crash) finish a request once.

- erasure: the bot's own erasure (`ErasureService.execute`) with the claim in its transaction
  (the jobs needed the person's identity until now); the person is told by the erasure;
- access, portability: the answer with the collected data is queued (`SYSTEMS_ANSWER`);
- correction (the bot's field was corrected at approval) and restriction (recorded at
  approval): the person is told it is done.

Storage-limitation erasures (jobs without a request) end the same way: the bot's own erasure of
the person once their jobs are done. An erasure request whose legal hold has ended is carried out
in the systems first too (`release_holds`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from html import escape

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from bot.core.policy import PolicyPack, RequestType
from bot.domain.erasure import ErasureService, pseudonym
from bot.domain.requests.carrying import Connected, add_jobs
from bot.domain.requests.notices import user_notice
from bot.domain.systems import COLLECTS
from storage.dialect import Space, exclusive
from storage.enums import MessageKind, OutboxKind, RequestStatus
from storage.models import Request
from storage.repositories import Repositories

log = logging.getLogger(__name__)


async def _ready(repo: Repositories, request_id: int) -> bool:
    return await repo.jobs.unfinished(request_id) == 0


class Finisher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        pack: PolicyPack,
        erasure: ErasureService,
        engine: AsyncEngine,
        secret: str,
        connected: Connected | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._pack = pack
        self._erasure = erasure
        self._engine = engine
        self._secret = secret
        self._connected = connected or Connected()

    async def run(self, bot: Bot) -> int:
        """The finishing pass: every request being carried out that no system owes anything
        any more, and every person whose storage-limitation jobs are done. At most once each
        (compare-and-set); run after every change and periodically, so a crash between the last
        job and the finish heals at the next pass. Returns how many ended now."""
        async with self._sessions() as session:
            repo = Repositories(session)
            requests = await repo.jobs.ready_requests()
            people = await repo.jobs.ready_people()
        ended = 0
        for request_id in requests:
            ended += await self.finish(bot, request_id)
        for user_id in people:
            ended += await self._erase_person(bot, user_id)
        return ended

    async def finish(self, bot: Bot, request_id: int) -> bool:
        async with self._sessions() as session:
            request = await Repositories(session).requests.get(request_id)
            if request is None or request.status != RequestStatus.CARRYING_OUT:
                return False
            kind, user_id = request.type, request.user_id
        if kind == RequestType.ERASURE:
            return await self._erase(bot, request_id, user_id)
        now = self._clock.now()
        async with self._sessions() as session:
            repo = Repositories(session)
            if not await _ready(repo, request_id) or not await self._claim(repo, request_id):
                await session.rollback()
                return False
            request = await repo.requests.get(request_id)
            assert request is not None
            if kind in COLLECTS:
                await repo.outbox.add(
                    kind=OutboxKind.SYSTEMS_ANSWER, user_id=user_id, request_id=request_id, now=now
                )
            else:
                event = "restricted" if kind == RequestType.RESTRICTION else "done"
                await self._tell(repo, request, event)
            await repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=request_id, now=now)
            await repo.commit()  # the end, its answer or notice and the card, together
        log.info("Request %s carried out in the operator's systems: done", request_id)
        return True

    async def release_holds(self, bot: Bot) -> int:
        """Legal holds whose date has come. An erasure request held by law is carried out in
        the operator's systems now (compare-and-set `blocked` -> `carrying_out`, its jobs in the
        same transaction), and the bot's own erasure follows when they are done; any other held
        request is released as before (`ErasureService.release_holds`)."""
        now = self._clock.now()
        started = 0
        if self._pack.systems:
            async with self._sessions() as session:
                expired = await Repositories(session).requests.expired_holds(now)
            for request in expired:
                if request.type == RequestType.ERASURE:
                    started += await self._carry_out_held(request.id, request.user_id, now)
        return started + await self._erasure.release_holds(bot)

    async def _carry_out_held(self, request_id: int, user_id: int, now: datetime) -> bool:
        async with self._sessions() as session:
            repo = Repositories(session)
            due = await repo.requests.get(request_id)
            if due is None or due.hold_until is None or due.hold_until > now:
                await session.rollback()
                return False
            if not await repo.requests.decide(
                request_id, RequestStatus.BLOCKED, status=RequestStatus.CARRYING_OUT
            ):
                await session.rollback()
                return False
            await add_jobs(
                repo,
                list(self._pack.systems),
                self._connected,
                user_id=user_id,
                request_id=request_id,
                action=RequestType.ERASURE,
                now=now,
            )
            await repo.outbox.add(kind=OutboxKind.CARD_EDIT, request_id=request_id, now=now)
            await repo.commit()  # the move and its jobs together; the commit wakes the worker
        return True

    async def _claim(self, repo: Repositories, request_id: int) -> bool:
        now = self._clock.now()
        return await repo.requests.decide(
            request_id, RequestStatus.CARRYING_OUT, status=RequestStatus.DONE, closed_at=now
        )

    async def _tell(self, repo: Repositories, request: Request, event: str) -> None:
        """The person is told it is done; with a DPO's explanation of what was left, that too."""
        user = await repo.users.get(request.user_id)
        if user is None:
            return
        explained = await repo.requests.said_all(request.id, MessageKind.EXPLAINED)
        text = user_notice(request, user, event, "", self._pack)
        if explained:
            more = user_notice(request, user, "explained", escape(explained[-1].text), self._pack)
            text += "\n\n" + more
        await repo.outbox.add(
            kind=OutboxKind.TO_USER,
            user_id=user.id,
            request_id=request.id,
            text=text,
            now=self._clock.now(),
        )

    async def _erase(self, bot: Bot, request_id: int, user_id: int) -> bool:
        """The bot's own erasure, its claim (nothing owed, then the compare-and-set) taken in
        the erasure's own transaction."""

        async def claim(repo: Repositories) -> bool:
            return await _ready(repo, request_id) and await self._claim(repo, request_id)

        key = await self._erasure.execute(
            bot, user_id, cause=f"request {request_id}", notice="requests.erased", claim=claim
        )
        return key is not None

    async def _erase_person(self, bot: Bot, user_id: int) -> bool:
        """A storage-limitation erasure whose systems are all done: the bot's own erasure, by
        one instance (the lock, then the check in the erasure's transaction)."""
        key = pseudonym(self._secret, user_id)

        async def claim(repo: Repositories) -> bool:
            return not await repo.jobs.retention_pending(user_id)

        async with exclusive(self._engine, Space.ERASURE, key) as mine:
            if not mine:
                return False
            erased = await self._erasure.execute(
                bot, user_id, cause="storage limitation", notice="retention.erased", claim=claim
            )
        return erased is not None
