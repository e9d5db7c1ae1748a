"""Errors the operator reads: a setting or a policy pack that cannot be used, in one line."""

from __future__ import annotations

from pydantic import ValidationError


class ConfigError(Exception):
    """A setting or the policy pack is missing or malformed; str() is one line for the operator."""


def describe_validation_error(error: ValidationError, *, env_names: bool) -> str:
    """Turn a pydantic error into one line that names each offending field."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
        if env_names:
            loc = loc.upper()
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required but not set"
        parts.append(f"{loc} {message}" if loc else message)
    return "; ".join(parts)
