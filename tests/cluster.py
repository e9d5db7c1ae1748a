"""Several `python -m bot` processes in webhook mode on one PostgreSQL and one Redis, driven the
way Telegram drives them: every update is POSTed (with the secret) to one instance behind the
"load balancer"; an instance that does not answer gets the update again at the next one. The
bots call the fake Bot API server in this process. Used by tests/test_instances.py and by the
benchmark `python -m tests.cluster [instances] [users]`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.fake_telegram import TOKEN, FakeTelegram
from tests.kit import ADMIN_CHAT_ID, DATA_KEY, PSEUDONYM_SECRET, Person, Reply

ROOT = Path(__file__).parent.parent
SECRET = "cluster-webhook-secret"
STAFF_ID = 4_000_001
BOOT_SECONDS = 240.0  # importing aiogram takes long on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Instance:
    number: int
    port: int
    log: Path
    process: asyncio.subprocess.Process | None = None
    ready: bool = False  # healthy since its last start: the load balancer sends it updates

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None


@dataclass
class Cluster:
    fake: FakeTelegram
    database_url: str
    redis_url: str
    folder: Path
    size: int = 3
    instances: list[Instance] = field(default_factory=list)
    posted: int = 0
    retried: int = 0
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _http: aiohttp.ClientSession | None = None

    def env(self) -> dict[str, str]:
        keep = {"PATH", "HOME", "LANG", "PYTHONHASHSEED"}
        env = {k: v for k, v in os.environ.items() if k in keep}
        return {
            **env,
            "PYTHONPATH": str(ROOT),
            "BOT_TOKEN": TOKEN,
            "ADMIN_CHAT_ID": str(ADMIN_CHAT_ID),
            "PSEUDONYM_SECRET": PSEUDONYM_SECRET,
            "DATA_KEY": DATA_KEY,
            "STAFF_IDS": str(STAFF_ID),
            "TELEGRAM_API_URL": self.fake.url,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "WEBHOOK_URL": "https://bot.example.org/telegram",
            "WEBHOOK_SECRET": SECRET,
            "BROADCAST_RATE": "30",
            # Not paced to the admin group's 20 a minute: thousands of cards in minutes here (the
            # pace across instances is tested on a clock: test_staff_reach).
            "STAFF_RATE": "0",
            "LOG_LEVEL": "WARNING",
        }

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        for number in range(self.size):
            self.instances.append(
                Instance(number, free_port(), self.folder / f"instance-{number}.log")
            )
        # The first one migrates the database alone; the others start together.
        await self.launch(self.instances[0])
        await asyncio.gather(*(self.launch(i) for i in self.instances[1:]))

    async def launch(self, instance: Instance) -> None:
        instance.ready = False
        env = {**self.env(), "WEBHOOK_LISTEN": f"127.0.0.1:{instance.port}"}
        log = instance.log.open("ab")
        instance.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=self.folder, env=env, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + BOOT_SECONDS
        while time.monotonic() < deadline:
            if not instance.alive:
                raise RuntimeError(f"instance {instance.number} exited: {instance.log}")
            try:
                async with self.http.get(instance.url + "/healthz") as response:
                    if response.status == 200:
                        instance.ready = True
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        raise TimeoutError(f"instance {instance.number} did not become healthy")

    def kill(self, instance: Instance) -> None:
        """SIGKILL: no graceful shutdown, like a crash or an OOM kill."""
        assert instance.process is not None
        instance.process.kill()
        instance.ready = False

    async def stop(self) -> None:
        for instance in self.instances:
            if instance.alive:
                assert instance.process is not None
                instance.process.terminate()
        for instance in self.instances:
            if instance.process is not None:
                try:
                    await asyncio.wait_for(instance.process.wait(), 30)
                except TimeoutError:
                    instance.process.kill()
                    await instance.process.wait()
        if self._http is not None:
            await self._http.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None
        return self._http

    async def post(self, update: dict[str, Any]) -> None:
        """Deliver one update like Telegram: until an instance acknowledges it with 200."""
        self.posted += 1
        for attempt in itertools.count():
            instance = self.instances[next(self._turn) % len(self.instances)]
            if not (instance.alive and instance.ready):
                await asyncio.sleep(0)
                continue
            try:
                async with self.http.post(
                    instance.url + "/telegram",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                ) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            self.retried += 1
            await asyncio.sleep(min(0.05 * (attempt + 1), 1.0))


class Remote:
    """What tests.kit.Person needs of a harness, over the cluster: the fake and a feed."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.fake = cluster.fake

    async def feed(self, update: dict[str, Any]) -> Reply:
        update.setdefault("update_id", self.fake.new_update_id())
        await self.cluster.post(update)
        return Reply([])


def person(remote: Remote, user_id: int, name: str, *, lang: str = "en") -> Person:
    someone = Person(remote, user_id, name, None, lang)  # type: ignore[arg-type]
    remote.fake.add_private_chat(someone.as_user())
    return someone


def staff(remote: Remote) -> Person:
    return Person(remote, STAFF_ID, "Sam", None, "en", chat_id=ADMIN_CHAT_ID)  # type: ignore[arg-type]


async def onboard_and_consent(user: Person) -> None:
    await user.send("/start")
    await user.tap("16 or older")
    await user.send("/consents")
    await user.tap("⬜ Marketing messages")
    await user.tap("✅ I agree")


async def file_restriction(user: Person, *, double: bool) -> None:
    """A restriction request; with `double` the last tap arrives twice at once (a double tap
    that the load balancer spreads over two instances)."""
    await user.send("/rights")
    await user.tap("⏸ Restrict processing")
    await user.tap("Skip")
    if not double:
        await user.tap("✅ Send the request")
        return
    message, button = user.button_message("✅ Send the request")
    await asyncio.gather(
        user.tap_data(button["callback_data"], message),
        user.tap_data(button["callback_data"], message),
    )


async def in_parallel(jobs: list[Any], width: int) -> None:
    slots = asyncio.Semaphore(width)

    async def run(job: Any) -> None:
        async with slots:
            await job

    await asyncio.gather(*(run(job) for job in jobs))


async def benchmark(size: int, users: int) -> None:
    """Onboarding and consent of `users` people over `size` instances; prints updates/s."""
    from tests.engines import TEST_DATABASE_URL, TEST_REDIS_URL, reset_servers

    if TEST_DATABASE_URL is None or TEST_REDIS_URL is None:
        raise SystemExit("set TEST_DATABASE_URL and TEST_REDIS_URL")
    reset_servers()
    import tempfile

    fake = FakeTelegram()
    await fake.start()
    fake.add_group(ADMIN_CHAT_ID, "Staff")
    with tempfile.TemporaryDirectory() as folder:
        cluster = Cluster(fake, TEST_DATABASE_URL, TEST_REDIS_URL, Path(folder), size)
        try:
            await cluster.start()
            remote = Remote(cluster)
            people = [person(remote, 7_000_000 + i, f"U{i}") for i in range(users)]
            started = time.perf_counter()
            await in_parallel([onboard_and_consent(p) for p in people], 50)
            elapsed = time.perf_counter() - started
        finally:
            await cluster.stop()
            await fake.stop()
    print(
        f"instances={size} users={users} updates={cluster.posted} elapsed={elapsed:.1f}s "
        f"updates/s={cluster.posted / elapsed:.0f}"
    )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(benchmark(*(args + [3, 1000][len(args) :])))
