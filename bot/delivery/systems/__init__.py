"""The operator's systems as the bot reaches them: the connectors (sql, webhook), the registry
that builds one per configured system, and the worker that runs the jobs."""
