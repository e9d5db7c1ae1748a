"""`OnAction`: one handler per callback action, matching exactly what
`Cb.filter(F.action == action)` matches."""

from __future__ import annotations

from aiogram import F
from aiogram.types import CallbackQuery, User

from bot.telegram.callbacks import (
    ConsentAction,
    ConsentCb,
    MenuAction,
    MenuCb,
    RequestAction,
    RequestCb,
)
from bot.telegram.filters import OnAction

SAMPLES = [
    "v1con:g:ads:0",
    "v1con:g",
    "v1con:gx:ads:0",  # another action that starts with the same letter
    "v1con:g:ads:99999999999999999999",  # a forged ID: fails to unpack
    "v1con:i:ads:0",
    "v1cons:g:ads:0",  # another prefix that starts with the same letters
    "v1menu:home",
    "v1menu:homes",
    "",
    ":",
    "v1req:1:done",
    "v1req:1:done:x",
    "v1req:x:done",
    "v1req:1:don",
]


def query(data: str | None) -> CallbackQuery:
    sender = User(id=1, is_bot=False, first_name="Ann")
    return CallbackQuery(id="1", from_user=sender, chat_instance="1", data=data)


async def test_on_action_matches_what_the_plain_filter_matches() -> None:
    for cb, action in [
        (ConsentCb, ConsentAction.GRANT),
        (ConsentCb, ConsentAction.INFO),
        (MenuCb, MenuAction.HOME),
        (RequestCb, RequestAction.DONE),
    ]:
        for data in [*SAMPLES, None]:
            plain = await cb.filter(F.action == action)(query(data))
            fast = await OnAction(cb, action)(query(data))
            assert fast == plain, (cb, action, data)


async def test_on_action_hands_the_unpacked_data_on() -> None:
    found = await OnAction(ConsentCb, ConsentAction.GRANT)(query("v1con:g:ads:0"))
    assert found == {"callback_data": ConsentCb(action=ConsentAction.GRANT, purpose="ads")}
