"""Domain: the services one update uses (onboarding, consents, requests, breaches, erasure,
retention, export, figures, templates, attachments, disclosures, campaign audiences and
broadcasts, the dates staff type, the staff directory) and the rules they apply. They read and
write through `storage.repositories` and flush; the update's unit of work commits (see
`bot.telegram.middlewares`). A service commits itself only where what follows must not undo
its write (a record or decision someone is told of next, over a Telegram call that can fail)
or a worker reads it from its own session; each such place says why.

May import: `bot.core`, `storage`. Never `bot.telegram`, `bot.delivery`, `bot.service` or
`handlers`: texts a person reads are composed in `bot.telegram` or through `bot.core.i18n`."""
