"""The connectors to the operator's systems (sql, webhook, manual) and the worker that runs
their jobs; what a job asks and what a system answers is `bot.domain.systems`'s."""
