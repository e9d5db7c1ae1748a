"""How updates are routed: nothing on the way to a handler leaves the event loop."""

from __future__ import annotations

from aiogram import Router

from handlers import get_routers


def all_routers(routers: list[Router]) -> list[Router]:
    found = []
    for router in routers:
        found.append(router)
        found.extend(all_routers(list(router.sub_routers)))
    return found


def test_every_handler_and_filter_is_awaited_in_the_event_loop() -> None:
    """aiogram runs a synchronous handler or filter (a bare `F...` magic filter, a `State`
    given as a filter) through `asyncio.to_thread`: a worker-thread round trip per check.
    Magic filters are wrapped in `bot.telegram.filters.Magic`, states in `StateFilter`."""
    threaded = []
    for router in all_routers(get_routers()):
        for name, observer in router.observers.items():
            for handler in observer.handlers:
                label = f"{router.name}.{name}: {handler.callback.__name__}"
                if not handler.awaitable:
                    threaded.append(label)
                threaded += [
                    f"{label} filter {f.callback!r}"
                    for f in handler.filters or []
                    if not f.awaitable
                ]
            threaded += [
                f"{router.name}.{name} filter {f.callback!r}"
                for f in observer._handler.filters or []
                if not f.awaitable
            ]
    assert threaded == []
