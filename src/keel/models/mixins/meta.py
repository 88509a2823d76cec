"""Small model utilities: ``_meta`` for templates, related models by name, reloading."""

from __future__ import annotations

from typing import Any, Self

from django.db import models, router
from django.db.models.options import Options

__all__ = ["PublicMetaMixin", "RelatedModelMixin", "ReloadMixin"]


class PublicMetaMixin(models.Model):
    """Expose ``_meta`` to templates, which refuse names starting with an underscore.

    ``{{ object.meta.verbose_name }}`` and ``{{ object.meta.verbose_name_plural }}`` work on any
    instance, and ``Model.meta()`` in Python returns the same ``Options``.
    """

    class Meta:
        abstract = True

    @classmethod
    def meta(cls) -> Options[Self]:
        """The model's ``_meta`` (``Options``): read-only use only."""
        return cls._meta


class RelatedModelMixin(models.Model):
    """Find the model and the manager at the other end of a relation, by field name.

    ``name`` may be a forward field (``"author"`` or its attname ``"author_id"``), a reverse
    relation (``"comments"``, or its ``related_name``/``related_query_name``), or ``"pk"`` (the
    parent model when the pk is a multi-table inheritance link). Unknown names raise Django's
    ``FieldDoesNotExist``; fields that are not relations, and generic foreign keys (no single
    model), raise ``ValueError``.
    """

    class Meta:
        abstract = True

    @classmethod
    def get_related_model(cls, name: str) -> type[models.Model]:
        """The model at the other end of the relation ``name``."""
        field = cls._meta.pk if name == "pk" else cls._meta.get_field(name)
        if field is None or not field.is_relation:
            raise ValueError(f"{cls.__name__}.{name} is not a relation.")
        related = field.related_model
        if related is None or isinstance(related, str):
            raise ValueError(f"{cls.__name__}.{name} has no single related model.")
        return related

    @classmethod
    def get_related_manager(cls, name: str) -> models.Manager[Any]:
        """The default manager of the model at the other end of the relation ``name``."""
        return cls.get_related_model(name)._default_manager


class ReloadMixin(models.Model):
    """Get a fresh copy of this row: ``instance.reload()`` returns a new instance.

    Unlike ``refresh_from_db()``, which updates the instance in place, ``reload()`` leaves the
    instance untouched, so both versions can be compared. Both read through the base manager
    (a default manager that filters rows never hides the row) and from the database the
    instance came from (``instance._state.db``) unless ``using`` says otherwise. The row must
    exist: otherwise ``Model.DoesNotExist`` is raised. An instance without a pk raises
    ``ValueError``.
    """

    class Meta:
        abstract = True

    def _reload_queryset(
        self, using: str | None, from_queryset: models.QuerySet[Self] | None
    ) -> models.QuerySet[Self]:
        if self.pk is None or (isinstance(self.pk, tuple) and None in self.pk):
            raise ValueError(f"Cannot reload an unsaved {type(self).__name__} instance.")
        queryset = from_queryset if from_queryset is not None else type(self)._base_manager.all()
        alias = using or self._state.db or router.db_for_read(type(self), instance=self)
        return queryset.using(alias).filter(pk=self.pk)

    def reload(
        self, *, using: str | None = None, from_queryset: models.QuerySet[Self] | None = None
    ) -> Self:
        """A new instance with the row as it is in the database now.

        ``from_queryset`` reads through another queryset, e.g. ``Model.objects.select_for_update()``
        (inside a transaction) or ``.only(...)``.
        """
        return self._reload_queryset(using, from_queryset).get()

    async def areload(
        self, *, using: str | None = None, from_queryset: models.QuerySet[Self] | None = None
    ) -> Self:
        """Asynchronous [`reload`][keel.conf.KeelSettings.reload]."""
        return await self._reload_queryset(using, from_queryset).aget()
