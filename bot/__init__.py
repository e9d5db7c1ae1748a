"""Privacy desk bot: a data-subject self-service desk for Telegram."""
