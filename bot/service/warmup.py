"""Keep aiogram's parametrised `Response[...]` models alive.

aiogram validates every Bot API answer with `Response[method.__returning__]`. pydantic caches
parametrised generics weakly, so the classes are garbage-collected and rebuilt again and again
(measured: about a quarter of the bot's CPU in the benchmark). Holding one strong reference per
method's return type keeps the cache warm.
"""

from __future__ import annotations

import inspect
from typing import Any

from aiogram import methods
from aiogram.methods.base import Response, TelegramMethod

_KEPT: list[Any] = []


def keep_response_models() -> int:
    if _KEPT:
        return len(_KEPT)
    for _, method in inspect.getmembers(methods, inspect.isclass):
        if issubclass(method, TelegramMethod) and method is not TelegramMethod:
            returning = getattr(method, "__returning__", None)
            if returning is not None:
                _KEPT.append(Response[returning])  # type: ignore[valid-type]
    return len(_KEPT)
