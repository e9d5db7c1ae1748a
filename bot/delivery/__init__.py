"""Delivery: the background workers that talk to Telegram on their own: the outbox (cards,
replies, redactions), campaigns and the scheduler (reminders, holds, retention, policy
announcements).

May import: `bot.core`, `bot.domain`, `bot.telegram` (texts and keyboards of what they send),
`storage`. Never `bot.service` or `handlers`."""
