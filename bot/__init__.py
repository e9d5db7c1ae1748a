"""Privacy desk bot: a data-subject self-service desk for Telegram.

The package is built in layers; each subpackage's docstring says what it holds and what it
may import. An arrow points at what a layer may use:

    service ──► delivery ──► telegram ──► domain ──► core
       │            │            │           │
       └────────────┴────────────┴───────────┴──────► storage

`handlers` (beside this package) may use telegram, domain and core. `storage` uses none of
them. tests/test_layers.py reads every import and fails on one against these arrows.
"""
