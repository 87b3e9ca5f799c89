"""Reporting owns no tables: it reads billing's rollups (``billing.models.UsageRollup``)."""
