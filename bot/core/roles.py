"""Staff roles: who may do what in the admin group.

A DPO may do everything. An agent works the request desk (cards, replies, templates, /due,
/register, /disclose, /consent, /stats) but sends no campaigns, no policy notices, no breach
notifications and changes no roles. Marketing sends campaigns and nothing else.

Every staff action names what it needs (`Need`); `need_for` gives the need of an action from its
audit name, so a new command is covered by naming its action (`breach.*` needs a DPO).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    DPO = "dpo"
    AGENT = "agent"
    MARKETING = "marketing"


class Need(StrEnum):
    """What an action needs; each is a set of roles that may do it."""

    DESK = "desk"  # request cards, replies, templates, registers, statistics
    CAMPAIGNS = "campaigns"  # marketing campaigns
    DPO = "dpo"  # policy notices, breaches, roles, the consent ledger

    @property
    def roles(self) -> frozenset[Role]:
        return _ROLES[self]


_ROLES: dict[Need, frozenset[Role]] = {
    Need.DESK: frozenset({Role.DPO, Role.AGENT}),
    Need.CAMPAIGNS: frozenset({Role.DPO, Role.MARKETING}),
    Need.DPO: frozenset({Role.DPO}),
}

# Action-name prefixes (as written to the audit log) and what they need; the first match wins.
_BY_PREFIX: tuple[tuple[str, Need], ...] = (
    ("campaign.", Need.CAMPAIGNS),
    ("policy.", Need.DPO),
    ("breach.", Need.DPO),
    ("role.", Need.DPO),
    ("ledger.", Need.DPO),
    # A clarification beyond the agent's limit (the pack's `agent_clarifications`) restarts or
    # pauses the term once more: a DPO decides it, with a reason.
    ("request.clarify_again", Need.DPO),
    # Completing a request being carried out in the operator's systems with what is left
    # explained (nothing more is done there): a DPO, with a reason.
    ("request.complete_explained", Need.DPO),
)


def need_for(action: str) -> Need:
    """What an audited action needs; everything not listed is desk work."""
    for prefix, need in _BY_PREFIX:
        if action.startswith(prefix):
            return need
    return Need.DESK


def may(role: Role | None, need: Need) -> bool:
    return role is not None and role in need.roles


def parse_role(word: str) -> Role | None:
    try:
        return Role(word.strip().lower())
    except ValueError:
        return None
