"""Repositories: the only place that speaks SQL, one module per aggregate; engine-specific SQL
is in `storage.dialect`. `Repositories` (in `unit_of_work`) holds every repository over one
database session and commits it. Everything is imported from here:
`from storage.repositories import Repositories`."""

from storage.repositories.attachments import AttachmentRepository
from storage.repositories.audit import AuditRepository
from storage.repositories.breaches import BreachRepository
from storage.repositories.campaigns import (
    Audience,
    CampaignRepository,
    Claimed,
    DeliveryBatch,
    Eligibility,
)
from storage.repositories.consents import ConsentRepository, LostRace
from storage.repositories.disclosures import DisclosureRepository
from storage.repositories.erasure import APPEND_ONLY, ERASED_TABLES, ErasureRepository
from storage.repositories.guardians import GuardianRepository
from storage.repositories.health import HealthRepository, Snapshot
from storage.repositories.outbox import OutboxRepository, outbox_lane
from storage.repositories.requests import RequestRepository
from storage.repositories.roles import RoleRepository
from storage.repositories.state import BotStateRepository
from storage.repositories.stats import StatsRepository
from storage.repositories.systems import SystemJobRepository
from storage.repositories.templates import TemplateRepository
from storage.repositories.unit_of_work import (
    OUTBOX_LISTENERS,
    Repositories,
    on_jobs_commit,
    on_outbox_commit,
)
from storage.repositories.users import UserRepository

__all__ = [
    "APPEND_ONLY",
    "ERASED_TABLES",
    "OUTBOX_LISTENERS",
    "AttachmentRepository",
    "Audience",
    "AuditRepository",
    "BotStateRepository",
    "BreachRepository",
    "CampaignRepository",
    "Claimed",
    "ConsentRepository",
    "DeliveryBatch",
    "DisclosureRepository",
    "Eligibility",
    "ErasureRepository",
    "GuardianRepository",
    "HealthRepository",
    "LostRace",
    "OutboxRepository",
    "Repositories",
    "RequestRepository",
    "RoleRepository",
    "Snapshot",
    "StatsRepository",
    "SystemJobRepository",
    "TemplateRepository",
    "UserRepository",
    "on_jobs_commit",
    "on_outbox_commit",
    "outbox_lane",
]
