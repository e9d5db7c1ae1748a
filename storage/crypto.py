"""Encryption at rest: every person's fields are sealed with AES-256-GCM under a data key of
their own; data keys are random and stored only wrapped by the master key, which never enters
the database. Destroying a person's data key makes every copy of their fields unreadable."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import bindparam, exists, insert, inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import DataKey, Sealed

KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "p1."
OWNER_BYTES = 8
# Texts that belong to no person (e.g. the daily report to staff) are sealed under this owner.
OPERATOR = 0
_KEY_ID_LABEL = b"privacy-desk master key id"


class KeyProblem(Exception):
    """A master key is missing, malformed or does not open the stored data keys; str() is one
    line for the operator and never contains key material."""


class DataKeyGone(Exception):
    """The person's data key was destroyed (they were erased): their fields cannot be read."""


def parse_master_key(text: str, name: str) -> bytes:
    """A master key as given in the settings: base64 of exactly 32 random bytes."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem(
            f"{name} is not base64 (create one with: openssl rand -base64 32)"
        ) from None
    if len(key) != KEY_BYTES:
        raise KeyProblem(f"{name} must be 32 bytes in base64, not {len(key)} bytes")
    return key


def new_master_key() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def key_id(master: bytes) -> str:
    """A fingerprint stored next to each wrapped key: tells which master key wrapped it."""
    return hmac.new(master, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def _owner_bytes(owner: int) -> bytes:
    return owner.to_bytes(OWNER_BYTES, "big", signed=True)


@dataclass(frozen=True)
class MasterKeys:
    """The current master key (wraps new data keys) and, during a rotation, the previous one
    (still opens keys not yet re-wrapped)."""

    current: bytes
    previous: tuple[bytes, ...] = ()
    _by_id: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ciphers = {key_id(k): AESGCM(k) for k in (*self.previous, self.current)}
        object.__setattr__(self, "_by_id", ciphers)

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def knows(self, wrapped_by: str) -> bool:
        return wrapped_by in self._by_id

    def wrap(self, owner: int, data_key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._by_id[self.current_id].encrypt(nonce, data_key, _owner_bytes(owner))

    def unwrap(self, owner: int, wrapped_by: str, blob: bytes) -> bytes:
        cipher = self._by_id.get(wrapped_by)
        if cipher is None:
            raise KeyProblem(
                f"the data keys are wrapped by master key {wrapped_by}, which is not configured "
                "(DATA_KEY / DATA_KEY_PREVIOUS)"
            )
        try:
            return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _owner_bytes(owner))
        except InvalidTag:
            raise KeyProblem(f"a data key does not open with master key {wrapped_by}") from None


def seal(data_key: bytes, owner: int, plaintext: str) -> Sealed:
    """Ciphertext of one field, naming its owner (authenticated, so rows cannot be swapped)."""
    header = _owner_bytes(owner)
    nonce = os.urandom(NONCE_BYTES)
    body = AESGCM(data_key).encrypt(nonce, plaintext.encode(), header)
    token = PREFIX + base64.urlsafe_b64encode(header + nonce + body).decode()
    return Sealed(plaintext, token)


def owner_of(token: str) -> int:
    raw = base64.urlsafe_b64decode(token[len(PREFIX) : len(PREFIX) + 12])
    return int.from_bytes(raw[:OWNER_BYTES], "big", signed=True)


def open_token(data_key: bytes, token: str) -> Sealed:
    raw = base64.urlsafe_b64decode(token[len(PREFIX) :])
    header, nonce, body = raw[:OWNER_BYTES], raw[OWNER_BYTES : OWNER_BYTES + 12], raw[20:]
    plaintext = AESGCM(data_key).decrypt(nonce, body, header).decode()
    return Sealed(plaintext, token)


# Built once (bind parameters by name): building them cost more CPU than running them.
_KEYS = DataKey.__table__
_WRAPPED_KEY = select(_KEYS.c.wrapped_by, _KEYS.c.wrapped).where(
    _KEYS.c.owner_id == bindparam("p_owner_id")
)
_KEY_COLUMNS = ("owner_id", "wrapped_by", "wrapped", "created_at")
_NEW_KEY = insert(_KEYS).from_select(
    list(_KEY_COLUMNS),
    select(*(bindparam(f"p_{name}", type_=_KEYS.c[name].type) for name in _KEY_COLUMNS)).where(
        ~exists().where(_KEYS.c.owner_id == bindparam("p_owner_id"))
    ),
)


class KeyRing:
    """Unwrapped data keys for one unit of work (one update, one worker step), then dropped.

    Methods take a synchronous connection: they run inside ORM flush and load events, or through
    `AsyncConnection.run_sync`."""

    def __init__(self, master: MasterKeys) -> None:
        self.master = master
        self._keys: dict[int, bytes] = {}
        self._destroyed: set[int] = set()
        self._absent: set[int] = set()  # seen without a key in this unit of work

    def remember(self, owner: int, wrapped_by: str | None, wrapped: bytes | None) -> None:
        """A wrapped key (or its absence) read along with other rows: no lookup needed later."""
        if owner in self._destroyed:
            return
        if wrapped_by is None or wrapped is None:
            self._absent.add(owner)
        else:
            self._keys[owner] = self.master.unwrap(owner, wrapped_by, wrapped)

    def key(self, connection: Connection, owner: int, *, create: bool) -> bytes | None:
        cached = self._keys.get(owner)
        if cached is not None:
            return cached
        if owner in self._destroyed:
            raise DataKeyGone(f"the data key of owner {owner} was destroyed in this transaction")
        row = None
        if owner not in self._absent or not create:
            row = connection.execute(_WRAPPED_KEY, {"p_owner_id": owner}).first()
        if row is not None:
            key = self.master.unwrap(owner, row.wrapped_by, row.wrapped)
        elif create:
            key = self._create(connection, owner)
        else:
            return None
        self._keys[owner] = key
        return key

    def _create(self, connection: Connection, owner: int) -> bytes:
        key = os.urandom(KEY_BYTES)
        values = {
            "owner_id": owner,
            "wrapped_by": self.master.current_id,
            "wrapped": self.master.wrap(owner, key),
            "created_at": datetime.now(UTC).replace(tzinfo=None),
        }
        # Insert-if-absent in portable SQL: a concurrent writer may have created it first.
        created = connection.execute(
            _NEW_KEY, {f"p_{name}": value for name, value in values.items()}
        )
        if created.rowcount == 1:
            return key
        row = connection.execute(_WRAPPED_KEY, {"p_owner_id": owner}).one()
        return self.master.unwrap(owner, row.wrapped_by, row.wrapped)

    def seal(self, connection: Connection, owner: int, plaintext: str) -> Sealed:
        key = self.key(connection, owner, create=True)
        assert key is not None
        return seal(key, owner, plaintext)

    def open(self, connection: Connection, token: str) -> Sealed:
        owner = owner_of(token)
        key = self.key(connection, owner, create=False)
        if key is None:
            raise DataKeyGone(f"no data key for owner {owner}: the person was erased")
        return open_token(key, token)

    def destroyed(self, owner: int) -> None:
        """The owner's key row was deleted: never use or re-create it in this unit of work."""
        self._keys.pop(owner, None)
        self._destroyed.add(owner)


async def check_master(engine: AsyncEngine, master: MasterKeys) -> None:
    """Refuse to start when a stored data key was wrapped by a master key we do not have."""
    async with engine.connect() as connection:
        if not await connection.run_sync(lambda c: inspect(c).has_table(DataKey.__tablename__)):
            return  # a database from before encryption: the upgrade seals it with this key
        ids = (await connection.scalars(select(DataKey.wrapped_by).distinct())).all()
    unknown = sorted(i for i in ids if not master.knows(i))
    if unknown:
        raise KeyProblem(
            f"DATA_KEY (key {master.current_id}) does not open the data keys in the database, "
            f"wrapped by master key {', '.join(unknown)}"
        )


async def rotate(engine: AsyncEngine, master: MasterKeys, batch: int = 200) -> int:
    """Re-wrap every data key not yet under the current master key, a batch per transaction,
    while the bot runs (it opens keys with either master key meanwhile). Each row changes by
    compare-and-set, so a concurrent erasure or a second rotation cannot be undone. Returns
    how many keys were re-wrapped."""
    done = 0
    while True:
        async with engine.begin() as connection:
            rows = (
                await connection.execute(
                    select(DataKey.owner_id, DataKey.wrapped_by, DataKey.wrapped)
                    .where(DataKey.wrapped_by != master.current_id)
                    .order_by(DataKey.owner_id)
                    .limit(batch)
                )
            ).all()
            for owner, wrapped_by, wrapped in rows:
                key = master.unwrap(owner, wrapped_by, wrapped)
                result = await connection.execute(
                    update(DataKey)
                    .where(DataKey.owner_id == owner, DataKey.wrapped_by == wrapped_by)
                    .values(wrapped_by=master.current_id, wrapped=master.wrap(owner, key))
                )
                done += result.rowcount
        if len(rows) < batch:
            return done


_current: ContextVar[KeyRing | None] = ContextVar("keyring", default=None)


def current_ring() -> KeyRing | None:
    """The key ring of the update being handled, shared by its session and the FSM storage."""
    return _current.get()


def use_ring(ring: KeyRing | None) -> object:
    return _current.set(ring)


def reset_ring(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
