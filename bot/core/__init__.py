"""Core: plain rules with no Telegram and no database in them: the clock, the policy pack and
its model, deadlines and working days, staff roles, translations, the formatting of dates and
contacts, errors, the worker-stopping helper.

May import: the standard library and third-party libraries only (no other `bot` layer,
no `storage`, no `handlers`)."""
