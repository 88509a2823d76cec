"""The version of each cached model's data, kept beside the data in its database."""

from __future__ import annotations

from django.db import models


class SiteVersion(models.Model):
    """How many committed writes ``label`` (``app_label.model_name``) has had in this database.

    Every write path of a cached model increments the row in the writing transaction, so the
    number commits (or rolls back) with the data. Shared stores label what they hold with it:
    a store that lost or rolled back data holds a smaller number than the database, which
    readers notice (see ``keel.site.versions``).
    """

    label = models.CharField(max_length=200, primary_key=True)
    version = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "site version"
        verbose_name_plural = "site versions"

    def __str__(self) -> str:
        return f"{self.label} v{self.version}"
