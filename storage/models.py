"""SQLAlchemy models. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite has no time zones."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use the injected clock")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Sealed(str):
    """A personal field's plaintext that also carries its ciphertext (`token`): code reads the
    text, the database receives the token. Made by storage.crypto."""

    token: str

    def __new__(cls, plaintext: str, token: str) -> Sealed:
        value = super().__new__(cls, plaintext)
        value.token = token
        return value


class Unopened(str):
    """A personal field's ciphertext as read from the database, before it is decrypted."""


class Personal(TypeDecorator[str]):
    """A personal text field, stored encrypted under its person's data key (storage.sealing
    seals it at flush and opens it at load). Plain text never reaches the database: binding
    an unsealed string is an error."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.token
        if isinstance(value, Unopened):
            return str(value)
        raise TypeError("a personal field was written without being sealed")

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else Unopened(value)


class Base(DeclarativeBase):
    """`__owner__` on a model with Personal columns names the attribute holding the person
    whose key seals them (`request_id`: the request's user); none set: the operator's key."""


class DataKey(Base):
    """A person's data key, wrapped by the master key. Deleting this row erases every copy of
    the person's fields, wherever they are: backups never carry this table."""

    __tablename__ = "data_keys"

    owner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    wrapped_by: Mapped[str] = mapped_column(String(16), index=True)  # master key fingerprint
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class User(Base):
    """A person who talks to the bot in a private chat, keyed by their Telegram user ID."""

    __tablename__ = "users"
    __owner__: ClassVar[tuple[str, ...]] = ("id",)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(Personal)
    first_name: Mapped[str | None] = mapped_column(Personal)
    last_name: Mapped[str | None] = mapped_column(Personal)
    language: Mapped[str] = mapped_column(String(8))
    age_group: Mapped[str | None] = mapped_column(String(16))
    age_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notice_version: Mapped[str | None] = mapped_column(String(64))
    notice_shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    phone: Mapped[str | None] = mapped_column(Personal)
    phone_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    restricted_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The last update from this person (storage limitation: idle accounts are erased).
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class GuardianLink(Base):
    """A one-time link a minor sends to a legal representative. Only the token's hash is kept."""

    __tablename__ = "guardian_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    minor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[int | None] = mapped_column(BigInteger, index=True)


class GuardianConfirmation(Base):
    """A legal representative's confirmation and consent, recorded against the minor."""

    __tablename__ = "guardian_confirmations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    minor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    guardian_id: Mapped[int] = mapped_column(BigInteger, index=True)
    link_id: Mapped[int] = mapped_column(
        ForeignKey("guardian_links.id", ondelete="CASCADE"), index=True
    )
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    policy_version: Mapped[str] = mapped_column(String(64))


class FsmRecord(Base):
    """aiogram FSM state and data, one row per storage key; data is JSON text."""

    __tablename__ = "fsm_states"
    __owner__: ClassVar[tuple[str, ...]] = ("user_id",)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    state: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[str | None] = mapped_column(Personal)  # JSON; None when empty


class BotState(Base):
    """Small facts the bot learns at run time (e.g. the admin chat's ID after a migration)."""

    __tablename__ = "bot_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ConsentText(Base):
    """The exact text a person saw before consenting, keyed by a hash of it."""

    __tablename__ = "consent_texts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8))
    policy_version: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)


class ConsentEvent(Base):
    """The append-only consent ledger: one row per grant or withdrawal, never updated."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    policy_version: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int] = mapped_column(BigInteger, index=True)
    text_id: Mapped[str | None] = mapped_column(ForeignKey("consent_texts.id"))


class ConsentState(Base):
    """The current state per user and purpose, derived from the ledger in the same transaction."""

    __tablename__ = "consent_states"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean, index=True)
    policy_version: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[int] = mapped_column(ForeignKey("consent_events.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Append-only log of what staff did (and what they were refused)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    allowed: Mapped[bool] = mapped_column(Boolean, default=True)


class Campaign(Base):
    """A message staff send to many users: marketing (needs consent) or a service notice."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # storage.enums.CampaignKind
    body: Mapped[str] = mapped_column(Text)  # HTML, as staff formatted it
    status: Mapped[str] = mapped_column(String(16), index=True)  # storage.enums.CampaignStatus
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    progress_message_id: Mapped[int | None] = mapped_column(Integer)


class Delivery(Base):
    """One recipient of one campaign. `sending` is written before the call to Telegram, so a
    crash never leads to a second copy: such rows become `uncertain`, never `pending` again."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "user_id"),
        # The next pending deliveries of a campaign, in order, without sorting a million rows.
        Index("ix_deliveries_queue", "campaign_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # storage.enums.DeliveryStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[int | None] = mapped_column(Integer)


class Request(Base):
    """A data-subject request, bound to the Telegram user who filed it; `user_id` is empty for
    a request staff registered that came outside the bot from someone who does not use it
    (its personal fields are then sealed under the operator's key)."""

    __tablename__ = "requests"
    __owner__: ClassVar[tuple[str, ...]] = ("user_id",)
    # Numbers are never reused, also after the newest request was erased (a pseudonymous
    # erasure record keeps the number): AUTOINCREMENT on SQLite, a sequence elsewhere.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Personal)  # JSON: the answers given
    status: Mapped[str] = mapped_column(String(16), index=True)  # storage.enums.RequestStatus
    verification: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    handled_by: Mapped[int | None] = mapped_column(BigInteger)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Personal)  # refusal or legal-hold reason
    # The pack's refusal ground (`RefusalGround.id`) the request was refused on.
    refusal_ground: Mapped[str | None] = mapped_column(String(24))
    hold_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    card_message_id: Mapped[int | None] = mapped_column(Integer)
    user_unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    undelivered: Mapped[int] = mapped_column(Integer, default=0)  # messages that failed for good


class RequestMessage(Base):
    """Everything said about a request: questions, answers, replies, reasons."""

    __tablename__ = "request_messages"
    __owner__: ClassVar[tuple[str, ...]] = ("request_id",)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    author: Mapped[str] = mapped_column(String(8))  # user | staff
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))  # storage.enums.MessageKind
    text: Mapped[str] = mapped_column(Personal)


class RelayLink(Base):
    """Which request a relayed message belongs to, in either chat (no forwarded-from needed)."""

    __tablename__ = "relay_links"
    __table_args__ = (UniqueConstraint("chat_id", "message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )


class OutboxItem(Base):
    """A message to deliver, written in the same transaction as the change it reports.

    Claimed with one conditional UPDATE (`pending` -> `sending`, `claimed_at` set); an item
    still `sending` after the lease was interrupted by a crash and is sent again with
    `repeated` set, so the reader is told it may be a repeat (at least once). `chat_id` is a
    chat to edit a message in (redactions after an erasure). Items of one `lane` go out in
    order; different lanes never wait for each other."""

    __tablename__ = "outbox"
    __owner__: ClassVar[tuple[str, ...]] = ("user_id", "request_id")
    __table_args__ = (
        # The claim (storage.repositories.OutboxRepository.claim): the oldest pending items, and
        # each one's lane's unfinished items, found without reading the items already sent.
        Index("ix_outbox_queue", "status", "id"),
        Index("ix_outbox_lanes", "lane", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))  # storage.enums.OutboxKind
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str | None] = mapped_column(Personal)
    status: Mapped[str] = mapped_column(String(16))  # storage.enums.OutboxStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    repeated: Mapped[bool] = mapped_column(Boolean, default=False)
    confirm_message_id: Mapped[int | None] = mapped_column(Integer)  # staff's "sent" notice
    # Items of one lane keep their order (storage.repositories.outbox_lane).
    lane: Mapped[str] = mapped_column(String(40), default="staff")


class Disclosure(Base):
    """A disclosure of a user's data to a third party, recorded by staff with /disclose."""

    __tablename__ = "disclosures"
    __owner__: ClassVar[tuple[str, ...]] = ("user_id",)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recipient: Mapped[str] = mapped_column(Personal)
    data: Mapped[str] = mapped_column(Personal)
    legal_basis: Mapped[str] = mapped_column(Personal)
    staff_id: Mapped[int] = mapped_column(BigInteger)


class ErasureRecord(Base):
    """What the law requires to keep after an erasure, under a pseudonym (a keyed hash of the
    Telegram ID) and dates only: that a request was received and fulfilled, that a consent
    existed when a message was sent."""

    __tablename__ = "erasure_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # storage.enums.RecordKind
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    detail: Mapped[str] = mapped_column(Text, default="{}")


class StaffRole(Base):
    """A role a DPO gave with /role; it takes precedence over STAFF_ROLES and the default."""

    __tablename__ = "staff_roles"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    role: Mapped[str] = mapped_column(String(16))
    set_by: Mapped[int] = mapped_column(BigInteger)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RequestAttachment(Base):
    """A file sent on a request, either way. Telegram holds the file; this row says where the
    message is (the sender's and the bot's copy), what type it is and how large: never the file
    or its file_id."""

    __tablename__ = "request_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    author: Mapped[str] = mapped_column(String(8))  # user | staff
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # document | photo
    size: Mapped[int | None] = mapped_column(BigInteger)
    source_chat_id: Mapped[int] = mapped_column(BigInteger)
    source_message_id: Mapped[int] = mapped_column(Integer)
    copy_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    copy_message_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # storage.enums.AttachmentStatus


class AnswerTemplate(Base):
    """A staff answer template: a name and one text per language (JSON {locale: text})."""

    __tablename__ = "answer_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    texts: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Breach(Base):
    """A breach of personal-data protection, recorded by staff with /breach: the facts, the
    authority's deadline, when the authority was notified and when the users were told (the
    users told and when are the deliveries of `campaign_id`)."""

    __tablename__ = "breaches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int] = mapped_column(BigInteger)
    known_at: Mapped[datetime] = mapped_column(UTCDateTime)
    what: Mapped[str] = mapped_column(Text)
    categories: Mapped[str] = mapped_column(Text)
    measures: Mapped[str] = mapped_column(Text)
    consequences: Mapped[str] = mapped_column(Text)
    affected: Mapped[str] = mapped_column(Text)  # all | consent:<purpose> | ids:1,2,3
    # The earliest deadline of an authority not yet notified (each law's: BreachNotice).
    authority_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # GDPR art. 33(3)-(4): approximate numbers of people and records, reasons for a late notice.
    people: Mapped[str | None] = mapped_column(Text)
    records: Mapped[str | None] = mapped_column(Text)
    delay: Mapped[str | None] = mapped_column(Text)
    users_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # art. 34(1)
    # Every authority notified (the last one's mark); before 0017 the one mark there was.
    authority_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    authority_notified_by: Mapped[int | None] = mapped_column(BigInteger)
    users_told_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))


class BreachNotice(Base):
    """The authority of one law (the pack's `laws`) notified of a breach: when and by whom.
    Under two laws each authority has its own deadline and its own mark."""

    __tablename__ = "breach_notices"
    __table_args__ = (UniqueConstraint("breach_id", "law"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    breach_id: Mapped[int] = mapped_column(ForeignKey("breaches.id"))
    law: Mapped[str] = mapped_column(String(32))  # a law id (bot/packs/laws/<id>.toml)
    notified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    notified_by: Mapped[int] = mapped_column(BigInteger)
