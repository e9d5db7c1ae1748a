"""The desk Mini App: its web routes, the init-data check and the JSON API (issue 22)."""
