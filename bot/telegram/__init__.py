"""Telegram presentation: callback data, keyboards, paging, texts by screen, CSV and file
builders, shared screens, the staff gate, filters and the per-update middlewares.

May import: `bot.core`, `bot.domain`, `storage`. Never `bot.delivery`, `bot.service` or
`handlers`."""
