"""Content hashes of imported fixtures, kept in the database they were imported into."""

from __future__ import annotations

from django.db import models


class FixtureState(models.Model):
    """The hash of the fixture content last imported under ``key``.

    Kept in the same database (and written in the same transaction) as the imported rows, so
    a reset or restored database re-imports what it lacks.
    """

    key = models.CharField(max_length=200, unique=True)
    content_hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "fixture state"
        verbose_name_plural = "fixture states"

    def __str__(self) -> str:
        return f"{self.key} ({self.content_hash[:12]})"
