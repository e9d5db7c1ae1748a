"""Translations: one TOML catalog per language (ru.toml, en.toml). No code lives here."""
