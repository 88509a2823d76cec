"""The base of every cached model (publishing querysets, ``publish()``, ``clear_cache()``) and
the singleton (``load()``, ``AbstractSiteSettings``)."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from django.db import models, router
from django.db.models.signals import class_prepared
from django.utils.translation import gettext_lazy as _

from keel import compat
from keel.exceptions import KeelError
from keel.site.cache import CachedSource, aread, clear_local_copies, read, schedule_publish
from keel.site.changes import saved_with_changes
from keel.site.codec import presentation_dict
from keel.site.sources import SingletonSource

__all__ = [
    "AbstractSiteSettings",
    "SingletonDeletionError",
    "SiteSettingsSyncMixin",
]


class SingletonDeletionError(KeelError):
    """A singleton row was asked to be deleted; it is edited, never deleted."""


_sources: dict[type[models.Model], tuple[CachedSource[Any], ...]] = {}
_first_sources: dict[type[models.Model], CachedSource[Any]] = {}


class PublishingQuerySet(models.QuerySet[Any]):
    """A queryset whose bulk writes publish the model's cache on commit, like ``save()``.

    ``update()``, ``bulk_create()`` and ``bulk_update()`` publish here; deletes (of instances,
    of querysets and by cascade) publish through keel's ``post_delete`` receiver.
    """

    def _published(self) -> None:
        self.model.publish(using=self.db)

    def update(self, **kwargs: Any) -> int:
        rows = super().update(**kwargs)
        self._published()
        return rows

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        created = super().bulk_create(objs, *args, **kwargs)
        self._published()
        return created

    def bulk_update(self, objs: Any, fields: Any, *args: Any, **kwargs: Any) -> int:
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        self._published()
        return rows


class SingletonQuerySet(PublishingQuerySet):
    """A singleton's queryset: ``update()`` publishes, ``delete()`` is refused."""

    def delete(self) -> tuple[int, dict[str, int]]:
        raise SingletonDeletionError(
            f"{self.model._meta.label} is a singleton: edit its row, do not delete it."
        )


def _publishing_base_manager(sender: type[models.Model], **kwargs: Any) -> None:
    """Make ``_base_manager`` of a concrete cached model its first publishing manager.

    Django's default base manager is a plain ``Manager``: ``Model._base_manager.update()``
    and ``bulk_update()`` would write without publishing. ``Meta.base_manager_name`` set by
    the project is kept.
    """
    opts = sender._meta
    if opts.abstract or opts.base_manager_name or not issubclass(sender, CachedModelMixin):
        return
    for manager in opts.managers:
        if isinstance(manager.get_queryset(), PublishingQuerySet):
            opts.base_manager_name = manager.name
            return


class_prepared.connect(_publishing_base_manager, dispatch_uid="keel.site.base_manager")


def _sources_of(concrete: type[models.Model]) -> tuple[CachedSource[Any], ...]:
    try:
        return _sources[concrete]
    except KeyError:
        _sources[concrete] = concrete.cache_sources()  # type: ignore[attr-defined]
        return _sources[concrete]


def _written(model: type[models.Model]) -> list[type[models.Model]]:
    """The cached concrete models a write of ``model`` changes: its own and, for a
    multi-table child, every cached parent (the child's row is also a row of each)."""
    concrete = compat.concrete_model(model)
    return [concrete] + [
        parent for parent in compat.parent_models(concrete) if issubclass(parent, CachedModelMixin)
    ]


class CachedModelMixin(models.Model):
    """What every cached model has: ``publish()``, ``clear_cache()`` and ``to_dict()``."""

    #: Name under which keel's context processors expose the model's cached object.
    context_name: ClassVar[str | None] = None
    #: Methods and properties templates may use, besides the published fields. Collected
    #: from every class of the model's MRO, so each field group adds its own.
    template_methods: ClassVar[tuple[str, ...]] = ()

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        """Save, then publish once per transaction, on commit."""
        super().save(**kwargs)
        type(self).publish(using=kwargs.get("using") or self._state.db)

    @classmethod
    def cache_sources(cls) -> tuple[CachedSource[Any], ...]:
        """The cached objects built from this model (one source per kind)."""
        raise NotImplementedError

    @classmethod
    def _source(cls) -> CachedSource[Any]:
        try:
            return _first_sources[cls]  # every read asks: one lookup
        except KeyError:
            _first_sources[cls] = _sources_of(compat.concrete_model(cls))[0]
            return _first_sources[cls]

    @classmethod
    def publish(cls, *, using: str | None = None) -> None:
        """Publish the database state on commit of ``using``'s transaction (at once outside).

        For a write that bypassed the ORM (raw SQL). Store errors are logged, never raised.
        """
        alias = using or router.db_for_write(cls)
        for concrete in _written(cls):
            schedule_publish(_sources_of(concrete), alias)

    @classmethod
    def clear_cache(cls, *, using: str | None = None) -> None:
        """Make every cached copy of this model stale, in every process: now, or when the
        current transaction commits.

        The next read rebuilds from the database. Store errors are logged, never raised.
        """
        alias = using or router.db_for_write(cls)
        for concrete in _written(cls):
            schedule_publish(tuple(_Invalidating(s) for s in _sources_of(concrete)), alias)
            clear_local_copies(concrete)

    def to_dict(self) -> dict[str, Any]:
        """The published fields as JSON-safe values: dates and decimals as strings, files as
        URLs (``None`` when empty), foreign keys as ids. Secret fields are never included."""
        return presentation_dict(self)


class _Invalidating(CachedSource[Any]):
    """A source that only moves the store's version (no document is rebuilt)."""

    rebuild_on_publish = False

    def __init__(self, source: CachedSource[Any]) -> None:
        super().__init__(source.model)
        self.kind = source.kind


class SiteSettingsSyncMixin(CachedModelMixin):
    """A singleton: one row with a fixed pk, read through keel's cache.

    ``load()`` returns the row (creating it when absent) as a model instance whose secret
    fields are deferred (read from the database on access, never cached). ``save()`` always
    targets the singleton pk and publishes once per transaction, on commit. ``delete()`` is
    refused with [`SingletonDeletionError`][keel.site.base.SingletonDeletionError].
    """

    #: The primary key of the one row.
    singleton_pk: ClassVar[int] = 1
    #: Cache one document per language. ``None`` (default): when a field's value depends on
    #: the active language, i.e. its attribute is not Django's own descriptor (what
    #: django-modeltranslation installs); one document otherwise, and reads then skip looking
    #: up the active language.
    cache_per_language: ClassVar[bool | None] = None

    objects = SingletonQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        """Save the one row and, once the outermost transaction commits, send
        [`site_settings_changed`][keel.signals.site_settings_changed] if a field changed."""
        self.pk = self.singleton_pk
        saved_with_changes(self, super().save, kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise SingletonDeletionError(
            f"{self._meta.label} is a singleton: edit its row, do not delete it."
        )

    @classmethod
    def cache_sources(cls) -> tuple[CachedSource[Any], ...]:
        return (SingletonSource(cls),)

    @classmethod
    def load(cls, *, using: str | None = None) -> Self:
        """The singleton, from the nearest fresh layer (see ``keel.site.cache``)."""
        source = _first_sources.get(cls) or cls._source()  # one call less on every read
        return read(source, using=using)  # type: ignore[no-any-return]

    @classmethod
    async def aload(cls, *, using: str | None = None) -> Self:
        """``load()`` for async code: the asyncio Redis client, the same layers."""
        return await aread(cls._source(), using=using)


class AbstractSiteSettings(SiteSettingsSyncMixin):
    """The project's site settings singleton; compose it with the ``Site*Mixin`` field groups.

    Exposed to templates as ``site_settings`` by
    [`keel.site.context_processors.site_settings`][keel.site.context_processors.site_settings].
    """

    context_name: ClassVar[str | None] = "site_settings"

    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        verbose_name = _("site settings")
        verbose_name_plural = _("site settings")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A model that declares no Meta gets the one of the first base in its MRO: field
        # groups listed before AbstractSiteSettings would hide the verbose names above.
        # (Django reads a declared Meta before this runs, so a declared one always wins.)
        inherited = getattr(cls, "Meta", None)
        if inherited is not None and not issubclass(inherited, AbstractSiteSettings.Meta):
            cls.Meta = AbstractSiteSettings.Meta  # type: ignore[misc]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)

    def save(self, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        # ``update_fields=[]`` saves nothing in Django: it must not write ``updated_at``.
        if update_fields is not None:
            update_fields = list(update_fields)
            if update_fields and "updated_at" not in update_fields:
                update_fields.append("updated_at")
            kwargs["update_fields"] = update_fields
        super().save(**kwargs)
