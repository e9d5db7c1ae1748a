"""Domain: the services one update uses (onboarding, consents, requests, breaches, erasure,
retention, export, figures, templates, attachments, audiences, the staff directory) and the
rules they apply. They read and write through `storage.repositories` and flush; the update's
unit of work commits (see `bot.telegram.middlewares`).

May import: `bot.core`, `storage`. Never `bot.telegram`, `bot.delivery`, `bot.service` or
`handlers`: texts a person reads are composed in `bot.telegram` or through `bot.core.i18n`."""
