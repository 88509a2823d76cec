"""What the last fixture import wrote into each row, per field, for the ``keep_edits`` policy."""

from __future__ import annotations

from django.db import models


class FixtureRowState(models.Model):
    """The values a fixture import under ``key`` last wrote into one row of ``model``.

    ``written`` maps each field's attname to the database's own text form of the value written
    (``"v<text>"``, ``"n"`` for NULL), or ``null`` when no import wrote the field. Rows are
    written set-based by the import, in its transaction; ``object_pk`` is the row's primary
    key as text.

    ``digest`` identifies the fixture object whose values were last written, byte for byte
    (in the import's context: model, lookup, schema); empty when the row kept an editor's
    value or was written without one. A ``keep_edits`` re-import leaves out a row whose object
    still has this digest: applying it again would change nothing.
    """

    key = models.CharField(max_length=200)
    model = models.CharField(max_length=100)
    object_pk = models.CharField(max_length=255)
    written = models.JSONField(default=dict)
    digest = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        verbose_name = "fixture row state"
        verbose_name_plural = "fixture row states"
        constraints = [
            models.UniqueConstraint(fields=["object_pk", "key"], name="keel_fixturerow_pk_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.model} #{self.object_pk}"
