"""Testing helpers for projects that read keel's site settings.

``save()`` then ``load()`` needs no helper: a transaction that wrote a cached model reads it
from the database until it ends, so a ``TestCase`` test (which runs in a transaction that
never commits) sees its own writes, and the next test does not. Nothing a test reads inside
that transaction reaches the shared store.

[`override_site_settings`][keel.test.override_site_settings] changes what ``load()`` returns without
writing anything::

    from keel.test import override_site_settings

    @override_site_settings(maintenance_mode=True)
    def test_visitors_get_a_503(client):
        assert client.get("/").status_code == 503

It works as a decorator of test functions, of ``TestCase`` classes (for every test of the
class) and as a context manager, like Django's ``override_settings``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from keel import compat
from keel.compat import TestContextDecorator

__all__ = ["override_site_settings"]


class override_site_settings(TestContextDecorator):
    """Make ``model.load()`` (default: the ``AbstractSiteSettings`` model) return ``values``
    for the named fields, in this process, while active. Nothing is written to the database
    or the shared store; templates, middleware and ``aload()`` see the values too.

    A relation takes an instance (``brand=Brand(...)``, its key and related object both
    overridden) or its key by attname (``brand_id=3``). Raises ``ValueError`` naming the field
    when ``values`` names something that is not a concrete field of the model, or gives a
    relation an instance of another model. Overrides nest; the innermost wins.
    """

    def __init__(self, model: type[Model] | None = None, **values: Any) -> None:
        self.model = model
        self.values = values
        super().__init__()

    def _target(self) -> type[Model]:
        from keel.site.registry import get_site_settings_model

        model = self.model or get_site_settings_model()
        return compat.concrete_model(model)

    def enable(self) -> None:
        from keel.site.copies import push_override

        model = self._target()
        known = {f.name: f for f in model._meta.concrete_fields}
        known.update((f.attname, f) for f in model._meta.concrete_fields)
        for name in self.values:
            if name not in known:
                raise ValueError(
                    f"override_site_settings: {model._meta.label} has no field {name!r}."
                )
        probe = model()
        for name, value in self.values.items():
            setattr(probe, name, value)  # a relation refuses an instance of another model here
        self._token = push_override(model, dict(self.values))

    def disable(self) -> None:
        from keel.site.copies import pop_override

        pop_override(self._token)
