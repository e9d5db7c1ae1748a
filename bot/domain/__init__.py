"""Domain: the services one update uses (onboarding, consents, requests, breaches, erasure,
retention, export, figures, templates, attachments, campaign audiences and broadcasts, the
dates staff type, the staff directory) and the rules they apply. They read and write through
`storage.repositories` and flush; the update's unit of work commits (see
`bot.telegram.middlewares`). The few that commit themselves say why where they do: a write
that must be durable before Telegram hears of it, or before a worker reads it from its own
session.

May import: `bot.core`, `storage`. Never `bot.telegram`, `bot.delivery`, `bot.service` or
`handlers`: texts a person reads are composed in `bot.telegram` or through `bot.core.i18n`."""
