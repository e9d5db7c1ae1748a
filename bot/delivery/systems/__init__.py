"""Carrying requests out in the operator's own systems (the pack's `[[systems]]`): one
connector per kind (`sql`, `webhook`; a manual system has none), each implementing
`bot.domain.systems.Connector`, and the signed callbacks of webhook systems (`callback`)."""
