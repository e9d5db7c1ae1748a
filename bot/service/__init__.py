"""Service: the process. Settings, building the app, start-up checks, the run loop, the web
server (webhook, /healthz, /metrics), logs, metrics and the maintenance commands.

May import: every layer of `bot`, `handlers` and `storage`."""
