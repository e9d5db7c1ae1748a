"""The database: models, repositories, migrations and the persistent FSM storage."""
