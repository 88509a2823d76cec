"""keel.compat: the private Django hooks, checked against the installed Django."""

from __future__ import annotations

import inspect

import pytest
from asgiref.sync import async_to_sync
from django.db import models
from django.db.models.signals import post_init

from keel import compat
from tests.conftest import signal_received
from tests.testapp.models.mixins_core import InitOverrideItem, TrackedItem

pytestmark = pytest.mark.django_db


def test_the_installed_django_is_one_the_hooks_were_checked_against() -> None:
    assert compat.DJANGO_VERSION in compat.SUPPORTED
    assert compat.FAST_FROM_DB


def test_do_update_still_has_the_arguments_keel_forwards() -> None:
    params = list(inspect.signature(models.Model._do_update).parameters)
    assert params[:7] == [
        "self",
        "base_qs",
        "using",
        "pk_val",
        "values",
        "update_fields",
        "forced_update",
    ]
    if compat.DJANGO_VERSION >= (6, 0):
        assert params[7:] == ["returning_fields"]
    else:
        assert params[7:] == []


def test_model_init_positional_path_is_what_instance_from_db_repeats() -> None:
    # instance_from_db repeats Model.__init__ for positional values: signals, _state, setattr.
    source = inspect.getsource(models.Model.__init__)
    assert "pre_init.send(sender=cls, args=args, kwargs=kwargs)" in source
    assert "self._state = ModelState()" in source
    assert "post_init.send(sender=cls, instance=self)" in source


@pytest.mark.parametrize("only", [None, ("name", "count")])
def test_instance_from_db_builds_what_django_builds(only: tuple[str, ...] | None) -> None:
    TrackedItem.objects.create(name="x", count=2, data={"a": [1]})
    qs = TrackedItem.objects.all() if only is None else TrackedItem.objects.only(*only)
    fast = qs.get()
    # Django 6.1 also records the queryset's fetch mode on the state.
    extra = (
        {"fetch_mode": vars(fast._state)["fetch_mode"]} if "fetch_mode" in vars(fast._state) else {}
    )
    plain = models.Model.from_db.__func__(TrackedItem, "default", *_row(fast, only), **extra)  # type: ignore[attr-defined]
    assert fast.__dict__.keys() == plain.__dict__.keys()
    assert {k: v for k, v in vars(fast).items() if k != "_state"} == {
        k: v for k, v in vars(plain).items() if k != "_state"
    }
    assert vars(fast._state) == vars(plain._state)
    assert fast.get_deferred_fields() == plain.get_deferred_fields()


def _row(instance: models.Model, only: tuple[str, ...] | None) -> tuple[list[str], list[object]]:
    names = [
        f.attname
        for f in instance._meta.concrete_fields
        if only is None or f.attname in (*only, "id")
    ]
    return names, [instance.__dict__[n] for n in names]


def test_a_model_overriding_init_loads_through_django_and_is_tracked() -> None:
    InitOverrideItem.objects.create(name="a")
    with signal_received(post_init, sender=InitOverrideItem) as sent:
        item = InitOverrideItem.objects.get()
    assert [kwargs["instance"] for kwargs in sent] == [item]
    assert item.initialised is True
    assert item.get_dirty_fields() == {}
    item.name = "b"
    assert item.get_dirty_fields() == {"name": "a"}


def test_asave_refuses_positional_arguments() -> None:
    item = TrackedItem.objects.create(name="a")
    with pytest.raises(TypeError, match="keyword arguments only"):
        async_to_sync(item.asave)(True)  # type: ignore[arg-type]


def test_file_is_committed_tells_an_upload_from_a_stored_file() -> None:
    from django.core.files.base import ContentFile

    from keel.compat import file_is_committed
    from tests.testapp.models.mixins_misc import MiscDocument

    stored = MiscDocument(attachment="documents/stored.txt")
    assert file_is_committed(stored.attachment)
    pending = MiscDocument(attachment=ContentFile(b"x", name="new.txt"))
    assert not file_is_committed(pending.attachment)


def test_rows_of_plain_descriptor_models_fill_the_dict_in_one_step() -> None:
    """The fast path applies when every field's descriptor only stores in __dict__."""
    assert compat._plain_attnames(TrackedItem) == tuple(
        f.attname for f in TrackedItem._meta.concrete_fields
    )


def test_a_descriptor_with_side_effects_takes_the_per_field_path() -> None:
    from tests.testapp.models.mixins_core import FullStackArticle

    assert compat._plain_attnames(FullStackArticle) is None  # FileField's descriptor
    FullStackArticle.objects.create(slug="s", title="t", attachment="articles/a.txt")
    loaded = FullStackArticle.objects.get()
    assert loaded.attachment.name == "articles/a.txt"
    assert not loaded.is_dirty()


def test_init_signals_are_sent_on_the_fast_path() -> None:
    TrackedItem.objects.create(name="x")
    with signal_received(post_init, sender=TrackedItem) as sent:
        loaded = TrackedItem.objects.get()
    assert [kwargs["instance"] for kwargs in sent] == [loaded]
