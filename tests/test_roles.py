"""Roles: a DPO does everything, an agent works the desk, marketing only sends campaigns; group
administrators are DPOs unless configured otherwise; refusals name the role and are audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.errors import ConfigError
from bot.core.roles import Need, Role, need_for
from bot.service.config import load_settings
from storage.models import AuditEntry
from tests.fake_telegram import FakeTelegram
from tests.kit import ADMIN_CHAT_ID, Harness
from tests.test_consents import onboarded
from tests.test_requests import file_erasure, stored


async def refusals(bot: Harness) -> set[tuple[int, str]]:
    async with bot.app.sessions() as session:
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.allowed.is_(False)))
        return {(a.actor_id, a.action) for a in rows}


def test_needs_of_actions() -> None:
    assert need_for("campaign.create") is Need.CAMPAIGNS
    assert need_for("policy.notify") is Need.DPO
    assert need_for("breach.report") is Need.DPO  # issue 9's /breach needs a DPO by its name
    assert need_for("request.done") is Need.DESK
    assert Need.DESK.roles == {Role.DPO, Role.AGENT}
    assert Need.CAMPAIGNS.roles == {Role.DPO, Role.MARKETING}


def test_staff_roles_setting() -> None:
    base = {"bot_token": "1234:" + "a" * 30, "admin_chat_id": -1, "pseudonym_secret": "x" * 20}
    settings = load_settings(_env_file=None, staff_roles="11:dpo, 22:Agent,33:marketing", **base)
    assert settings.staff_roles == {11: Role.DPO, 22: Role.AGENT, 33: Role.MARKETING}
    assert settings.admin_role is Role.DPO
    assert load_settings(_env_file=None, group_admin_role="none", **base).admin_role is None
    with pytest.raises(ConfigError, match="STAFF_ROLES"):
        load_settings(_env_file=None, staff_roles="11:boss", **base)


async def test_dpo_gives_roles_and_each_role_is_held_to_its_actions(bot: Harness) -> None:
    ann = await onboarded(bot, "Ann")
    dpo = bot.staff("Dana")  # a group administrator: a DPO by default
    agent = bot.staff("Alex", status="member")
    seller = bot.staff("Mia", status="member")
    number = await file_erasure(bot, ann)
    await bot.settle()
    [card] = bot.cards()
    card_message = bot.fake.messages[(ADMIN_CHAT_ID, card.message_id)]

    await agent.send(f"/role {agent.id} dpo")  # not staff at all yet
    agent.expect("Это могут делать только сотрудники")
    await dpo.send(f"/role {agent.id} agent")
    dpo.expect(f"Пользователю {agent.id} выдана роль «агент»")
    await dpo.send(f"/role {seller.id} marketing")
    await dpo.send(f"/role {seller.id} boss")
    dpo.expect("/role id-пользователя dpo|agent|marketing")
    await dpo.send("/role")
    dpo.expect(f"• {agent.id}: агент")

    # The agent works the card but sends no campaign, no policy notice, gives no roles.
    await agent.tap_data(f"v1req:{number}:take", card_message)
    await bot.settle()
    assert (await stored(bot, number)).status == "in_progress"
    await agent.send("/campaign Big sale")
    agent.expect("Это действие доступно роли: DPO или маркетинг. Ваша роль: агент.")
    await agent.send("/notify_policy")
    agent.expect("Это действие доступно роли: DPO. Ваша роль: агент.")
    await agent.send(f"/role {agent.id} dpo")
    agent.expect("доступно роли: DPO")

    # Marketing sends campaigns and nothing else.
    await seller.tap_data(f"v1req:{number}:done", card_message)
    alert = seller.expect("Нужна роль: DPO или агент. Ваша роль: маркетинг.")
    assert alert.show_alert
    await seller.reply_to(card, "Hello from marketing")
    seller.expect("доступно роли: DPO или агент")
    await seller.send("/campaign Big sale")
    seller.expect("Рассылка №1")
    assert (await stored(bot, number)).status == "in_progress"
    assert not any("Hello from marketing" in e.text for e in ann.inbox)

    assert await refusals(bot) == {
        (agent.id, "role.set"),
        (agent.id, "campaign.create"),
        (agent.id, "policy.notify"),
        (seller.id, "request.done"),
        (seller.id, "request.reply"),
    }


async def test_configured_roles_in_english(
    fake: FakeTelegram, tmp_path: Path, clock: FrozenClock
) -> None:
    bot = Harness(
        fake,
        tmp_path,
        clock=clock,
        admin_locale="en",
        group_admin_role="agent",
        staff_roles="7000001:marketing",
    )
    await bot.start()
    try:
        admin = bot.staff("Ada")  # an administrator, but administrators are agents here
        await admin.send("/notify_policy")
        admin.expect("This needs the role DPO. Your role: agent.")
        seller_in_group = bot.user("Mia", user_id=7000001).in_chat(ADMIN_CHAT_ID)
        await seller_in_group.send("/due")
        seller_in_group.expect("This needs the role DPO or agent. Your role: marketing.")
        assert await refusals(bot) == {(admin.id, "policy.notify"), (7000001, "requests.due")}
    finally:
        await bot.stop()
