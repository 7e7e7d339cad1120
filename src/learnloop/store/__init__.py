"""Persistence: tables, migrations and repositories."""
