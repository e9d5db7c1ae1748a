"""Texts by screen, composed from the policy pack and the locale catalogs (HTML parse mode):
`notice` (the privacy notice, help, policy versions), `consents`, `requests` (the staff card,
the due list, a user's requests), `access` (the answer to an access request), `breaches`,
`campaigns`, `stats` (the /stats summary) and `parts` (a long text split into messages).

Files (CSV, the chart) are built in `bot.telegram.files` and `bot.telegram.charts`."""
