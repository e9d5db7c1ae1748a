"""Carrying requests out in the operator's own systems (the pack's `[[systems]]`): one
connector per kind (`sql`; webhook and the worker that runs the jobs live beside it), each
implementing `bot.domain.systems.Connector`."""
