"""Telegram presentation: callback data, keyboards, paging, texts by screen (`texts/`), the
CSV files (`files`) and the /stats chart (`charts`), shared screens, the staff gate, filters
and the per-update middlewares (the update's unit of work).

May import: `bot.core`, `bot.domain`, `storage`. Never `bot.delivery`, `bot.service` or
`handlers`."""
