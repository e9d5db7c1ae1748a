"""The `webhook` kind of the operator's systems: a signed JSON job POSTed to the operator's HTTPS
endpoint, answered now (200 with the result) or later (202, then a signed callback on the bot's
web server: `bot.delivery.systems.callback`).

The job (one JSON object, UTF-8):
    {"job": 17, "request": 42, "type": "erasure",
     "identity": {"telegram_id": 123, "phone": "+375291234567"},
     "due": "2026-01-31", "correction": {"field": "first_name", "value": "Ann"},
     "restrict_until": "2026-03-01T00:00:00+00:00",
     "callback": "https://bot.example.org/systems/support/callback"}
`job` is the idempotency key (also sent as `Idempotency-Key`): the same job may be sent again
after a timeout or a crash, and must change nothing the second time. The body is signed in the
header `X-Privacy-Desk-Signature: sha256=<hex>`, HMAC-SHA256 of the exact body bytes under the
system's secret; the callback is signed the same way.

The result (a 200's body, or a callback's): {"counts": {category: n}, "data": {category:
[{field: value, ...}]}}, the categories the system's own (`System.categories`), values strings,
numbers, booleans or null. Anything else the service answers is `Failed`, and is retried: the
reason names only the HTTP status or the error's class, never the URL, the secret or the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp

from bot.core.systems import System
from bot.domain.systems import COLLECTS, Accepted, Done, Failed, Outcome, Subject, Work

SIGNATURE_HEADER = "X-Privacy-Desk-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TIMEOUT_SECONDS = 30.0
MAX_RESULT = 16 * 1024 * 1024  # a 200's body: bigger is refused (Failed)
NO_CALLBACK = "no callback URL configured (SYSTEMS_CALLBACK_URL): the service must answer 200"
_SCALARS = (str, int, float, bool, type(None))


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`: "sha256=" and the HMAC-SHA256 in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether `signature` (the header's value) is `body`'s under `secret` (constant time)."""
    return signature is not None and hmac.compare_digest(
        sign(secret, body).encode(), signature.strip().encode()
    )


def callback_path(system_id: str) -> str:
    return f"/systems/{system_id}/callback"


def system_callback_url(base: str | None, system_id: str) -> str | None:
    """The callback URL of a system under SYSTEMS_CALLBACK_URL (the public base URL of the bot's
    web server), None without it. A URL already ending with the system's path is kept."""
    if not base:
        return None
    path = callback_path(system_id)
    return base if base.endswith(path) else base.rstrip("/") + path


def job_body(work: Work, callback: str | None) -> bytes:
    """The exact bytes POSTed (and signed) for `work`."""
    correction = work.correction
    job = {
        "job": work.job_id,
        "request": work.request_id,
        "type": str(work.action),
        "identity": {"telegram_id": work.subject.telegram_id, "phone": work.subject.phone},
        "due": None if work.due_at is None else work.due_at.date().isoformat(),
        "correction": (
            None if correction is None else {"field": correction.field, "value": correction.value}
        ),
        "restrict_until": None if work.restrict_until is None else work.restrict_until.isoformat(),
        "callback": callback,
    }
    return json.dumps(job, ensure_ascii=False, separators=(",", ":")).encode()


def parse_result(system: System, action: str, result: Any) -> Done | str:
    """A service's result as a `Done`, or why it is malformed (one line naming no value): the
    categories must be the system's own, counts whole numbers, records flat mappings. The data
    is kept only for what collects (access, portability)."""
    if not isinstance(result, dict):
        return "the result is not a JSON object"
    counts, data = result.get("counts", {}), result.get("data", {})
    if not isinstance(counts, dict) or not isinstance(data, dict):
        return "`counts` and `data` must be JSON objects"
    own = set(system.categories)
    if not set(counts) <= own or not set(data) <= own:
        return "the result names a category that is not this system's"
    if not all(type(n) is int and n >= 0 for n in counts.values()):
        return "`counts` must map categories to whole numbers"
    found: dict[str, list[dict[str, Any]]] = {}
    for category, records in data.items():
        if not isinstance(records, list) or not all(_flat(r) for r in records):
            return "`data` must map categories to lists of flat objects"
        if records:
            found[category] = [{"source": system.id, "fields": dict(r)} for r in records]
    if not counts:
        counts = {category: len(records) for category, records in found.items()}
    return Done(counts=dict(counts), found=found if action in COLLECTS else {})


def _flat(record: Any) -> bool:
    return isinstance(record, dict) and all(isinstance(v, _SCALARS) for v in record.values())


class WebhookConnector:
    """One webhook system (`bot.domain.systems.Connector`): one HTTP session, closed by
    `close()`. `callback_url`: SYSTEMS_CALLBACK_URL (the system's own path is added), or None:
    then the service must answer 200, and a 202 is `Failed`."""

    def __init__(
        self,
        system: System,
        url: str,
        secret: str,
        callback_url: str | None,
        *,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._system = system
        self._url = url
        self._secret = secret
        self._callback = system_callback_url(callback_url, system.id)
        self._timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    @property
    def system(self) -> System:
        return self._system

    async def run(self, work: Work) -> Outcome:
        body = job_body(work, self._callback)
        try:
            status, answer = await self._post(body, {IDEMPOTENCY_HEADER: str(work.job_id)})
        except TimeoutError:
            return Failed(f"no answer within {self._timeout:g} s (timeout)")
        except aiohttp.ClientError as error:
            return Failed(f"the request failed ({type(error).__name__})")
        if status == 202:
            return Accepted() if self._callback else Failed(NO_CALLBACK)
        if status != 200:
            return Failed(f"the service answered HTTP {status}")
        if answer is None:
            return Failed("the answer is too big")
        try:
            result = json.loads(answer)
        except ValueError:
            return Failed("the answer is not JSON")
        done = parse_result(self._system, str(work.action), result)
        return Failed(f"bad result: {done}") if isinstance(done, str) else done

    async def check(self) -> list[str]:
        """A signed {"ping": true}: any 2xx answer is fine."""
        try:
            status, _ = await self._post(b'{"ping":true}', {})
        except TimeoutError:
            return [f"{self._system.id}: the endpoint did not answer within {self._timeout:g} s"]
        except aiohttp.ClientError as error:
            return [f"{self._system.id}: the endpoint cannot be reached ({type(error).__name__})"]
        if not 200 <= status < 300:
            return [f"{self._system.id}: the endpoint answered a ping with HTTP {status}"]
        return []

    async def dry_run(self, subject: Subject) -> list[str]:
        return [f"{self._system.id}: a webhook service is asked nothing in a dry run"]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes | None]:
        """POST `body` signed; the status and the body (None when over MAX_RESULT). Never
        follows a redirect: a signed job goes only to the configured URL."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                headers={"User-Agent": "privacy-desk"},
            )
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            **headers,
        }
        async with self._http.post(
            self._url, data=body, headers=headers, allow_redirects=False
        ) as response:
            if response.status != 200:
                return response.status, b""
            answer = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                answer += chunk
                if len(answer) > MAX_RESULT:
                    return response.status, None
            return response.status, bytes(answer)
