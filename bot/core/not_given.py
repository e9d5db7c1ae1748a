"""Fields an operator's policy may not give, and the version of a pack whose policy gives none.

A pack lists each field its policy does not give in `not_given`: users see nothing invented in
its place, and staff are told at every start what is still to fill in (bot/service/startup.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

# Fields a policy may not give. Each one a pack leaves out is listed in `not_given`: users see
# nothing invented in its place, and staff are told at every start what is still to fill in.
NOT_GIVEN_FIELDS = (
    "operator.address",
    "operator.registration_number",
    "policy.version",
    "policy.effective_date",
    "policy.url",
)
NotGivenField = Literal[
    "operator.address",
    "operator.registration_number",
    "policy.version",
    "policy.effective_date",
    "policy.url",
]


def field_value(pack: Any, dotted: str) -> Any:
    """`pack.operator.address` for "operator.address" (a model or its raw dict)."""
    value = pack
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
    return value


def content_version(raw: dict[str, Any]) -> str:
    """The version of a pack whose policy gives none: the pack's identifier and a hash of what
    it says (comments and layout aside; its `policy` and `next_policy` tables aside)."""
    body = {k: v for k, v in raw.items() if k not in {"policy", "next_policy", "not_given"}}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return f"{raw.get('id', 'pack')}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
