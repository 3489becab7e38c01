"""Manage the installed configs: diff, apply with validation, rollback, drift, service commands."""
