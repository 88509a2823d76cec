"""AutoForceInsert, CallFieldsPreSave, AlwaysUpdateFields, AutoRemovePK and Timestamped."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, models, transaction
from django.test.utils import CaptureQueriesContext

from keel.models.mixins import AlwaysUpdateFieldsMixin
from tests.testapp.models.mixins_core import (
    AlwaysItem,
    AutoAlwaysItem,
    ForceInsertChild,
    ForceInsertItem,
    PreSaveItem,
    RemovePKItem,
    StampedItem,
)

pytestmark = pytest.mark.django_db


def _sql(ctx: CaptureQueriesContext, verb: str) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if q["sql"].upper().startswith(verb)]


# --- AutoForceInsertMixin --------------------------------------------------------------------


def test_a_new_instance_with_a_preset_pk_is_one_insert() -> None:
    with CaptureQueriesContext(connection) as ctx:
        ForceInsertItem(code=1, name="a").save()
    assert len(ctx.captured_queries) == 1
    assert _sql(ctx, "INSERT")


def test_a_preset_pk_of_an_existing_row_is_refused_not_overwritten() -> None:
    ForceInsertItem.objects.create(code=1, name="original")
    with pytest.raises(IntegrityError), transaction.atomic():
        ForceInsertItem(code=1, name="intruder").save()
    assert ForceInsertItem.objects.get(code=1).name == "original"


def test_multi_table_parents_are_inserted_without_a_prior_update() -> None:
    with CaptureQueriesContext(connection) as ctx:
        ForceInsertChild(code=2, name="a", extra="b").save()
    assert not _sql(ctx, "UPDATE")
    assert len(_sql(ctx, "INSERT")) == 2


def test_an_explicit_force_insert_false_is_respected() -> None:
    ForceInsertItem.objects.create(code=3, name="a")
    ForceInsertItem(code=3, name="upsert").save(force_insert=False)
    assert ForceInsertItem.objects.get(code=3).name == "upsert"


def test_loaded_instances_are_updated() -> None:
    item = ForceInsertItem.objects.create(code=4, name="a")
    item.name = "b"
    item.save()
    assert ForceInsertItem.objects.get(code=4).name == "b"


# --- CallFieldsPreSaveMixin ------------------------------------------------------------------


def test_pre_save_runs_for_fields_outside_update_fields() -> None:
    item = PreSaveItem.objects.create(name="a")
    before = PreSaveItem.objects.get(pk=item.pk).touched_at
    with CaptureQueriesContext(connection) as ctx:
        item.save(update_fields=["name"])
    (sql,) = _sql(ctx, "UPDATE")
    assert "touched_at" in sql
    assert PreSaveItem.objects.get(pk=item.pk).touched_at > before


def test_pre_save_is_not_called_on_insert_by_the_mixin() -> None:
    with CaptureQueriesContext(connection) as ctx:
        PreSaveItem(name="a").save()
    assert len(ctx.captured_queries) == 1


def test_an_empty_update_fields_stays_a_no_op() -> None:
    item = PreSaveItem.objects.create(name="a")
    with CaptureQueriesContext(connection) as ctx:
        item.save(update_fields=[])
    assert ctx.captured_queries == []


# --- AlwaysUpdateFieldsMixin -----------------------------------------------------------------


def test_partial_saves_include_the_always_fields() -> None:
    item = AlwaysItem.objects.create(name="a")
    item.name = "b"
    item.touched = 5
    with CaptureQueriesContext(connection) as ctx:
        item.save(update_fields=["name"])
    (sql,) = _sql(ctx, "UPDATE")
    assert "touched" in sql
    row = AlwaysItem.objects.get(pk=item.pk)
    assert (row.name, row.touched) == ("b", 5)


def test_force_update_without_update_fields_writes_every_field() -> None:
    """Fixed: save(force_update=True) persisted only the always-fields (data loss)."""
    item = AlwaysItem.objects.create(name="a")
    item.name = "kept"
    item.counter = 3
    item.save(force_update=True)
    row = AlwaysItem.objects.get(pk=item.pk)
    assert (row.name, row.counter) == ("kept", 3)


def test_with_auto_update_a_change_writes_it_and_the_always_fields() -> None:
    item = AutoAlwaysItem.objects.create(name="a")
    item = AutoAlwaysItem.objects.get(pk=item.pk)
    item.counter = 2
    with CaptureQueriesContext(connection) as ctx:
        item.save(force_update=True)
    (sql,) = _sql(ctx, "UPDATE")
    set_clause = sql.split(" WHERE ")[0]
    assert "counter" in set_clause
    assert "touched" in set_clause
    assert "name" not in set_clause


def test_no_change_writes_nothing_even_with_always_fields() -> None:
    item = AutoAlwaysItem.objects.create(name="a")
    item = AutoAlwaysItem.objects.get(pk=item.pk)
    with CaptureQueriesContext(connection) as ctx:
        item.save()
    assert ctx.captured_queries == []


def test_unknown_always_update_fields_are_refused_when_the_class_is_built() -> None:
    """Fixed: a missing attribute gave AttributeError at save time."""
    from django.apps.registry import Apps

    with pytest.raises(ImproperlyConfigured, match="'nope'"):

        class Broken(AlwaysUpdateFieldsMixin):
            always_update_fields = ("nope",)
            name = models.CharField(max_length=10)

            class Meta:
                app_label = "testapp"
                apps = Apps()


# --- AutoRemovePKFromUpdateFieldsMixin -------------------------------------------------------


def test_an_unchanged_pk_is_dropped_from_update_fields() -> None:
    item = RemovePKItem.objects.create(code="a", name="x")
    item.name = "y"
    item.save(update_fields=["code", "name"])
    assert RemovePKItem.objects.get(code="a").name == "y"


def test_a_changed_pk_saves_a_copy() -> None:
    item = RemovePKItem.objects.create(code="a", name="x")
    item.code = "b"
    item.save(update_fields=["code", "name"])
    assert sorted(RemovePKItem.objects.values_list("code", flat=True)) == ["a", "b"]


def test_a_changed_pk_never_overwrites_an_existing_row() -> None:
    """Fixed: the duplication path silently overwrote the row already holding the new pk."""
    RemovePKItem.objects.create(code="taken", name="keep me")
    item = RemovePKItem.objects.create(code="a", name="x")
    item.code = "taken"
    with pytest.raises(IntegrityError), transaction.atomic():
        item.save()
    assert RemovePKItem.objects.get(code="taken").name == "keep me"


# --- TimestampedMixin ------------------------------------------------------------------------


def test_timestamps_are_set_and_kept_fresh_by_partial_saves() -> None:
    item = StampedItem.objects.create(name="a")
    assert item.created_at <= item.updated_at
    created, updated = item.created_at, item.updated_at
    item.name = "b"
    item.save(update_fields=["name"])
    row = StampedItem.objects.get(pk=item.pk)
    assert row.created_at == created
    assert row.updated_at > updated
