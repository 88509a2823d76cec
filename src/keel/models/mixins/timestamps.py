"""Creation and last-modification timestamps."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from keel import compat

__all__ = ["TimestampedMixin"]


class TimestampedMixin(compat.AsyncSaveOptionsMixin):
    """``created_at`` (set once) and ``updated_at`` (set by every save, partial ones too).

    A save with a non-empty ``update_fields`` writes ``updated_at`` as well, so a partial save
    never leaves it stale; an empty ``update_fields`` stays a no-op.
    """

    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        get_latest_by = "updated_at"

    def save(self, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields:
            kwargs["update_fields"] = {*update_fields, "updated_at"}
        super().save(**kwargs)
