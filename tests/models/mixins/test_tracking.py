"""Change tracking (ChangeTrackingMixin) and AutoUpdateFieldsMixin on real databases."""

from __future__ import annotations

import copy
import pickle
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.db.models.signals import post_init, pre_init
from django.test.utils import CaptureQueriesContext

from tests.models.mixins.conftest import (
    assert_saving_writes_nothing,
    loaded_item,
    stored_values,
    updates,
)
from tests.testapp.models.mixins_core import (
    CompositeItem,
    CoreAuthor,
    PreSaveItem,
    StampedItem,
    TrackedChild,
    TrackedItem,
    TrackedOnly,
)

pytestmark = pytest.mark.django_db


def test_a_loaded_instance_has_no_changes() -> None:
    item = loaded_item()
    assert item.get_dirty_fields() == {}
    assert not item.is_dirty()
    assert not item.has_changed("name")


def test_assignment_records_the_old_value_of_a_real_change_only() -> None:
    item = loaded_item(count=1)
    item.count = 1
    item.name = "a"
    assert item.get_dirty_fields() == {}
    item.count = 2
    item.count = 3
    assert item.get_dirty_fields() == {"count": 1}
    assert item.previous("count") == 1
    assert item.previous("name") == "a"


def test_setting_a_field_back_to_its_loaded_value_clears_the_change() -> None:
    item = loaded_item()
    item.name = "b"
    item.name = "a"
    assert not item.has_changed("name")


def test_values_are_compared_after_conversion() -> None:
    item = loaded_item(price=Decimal("1.50"))
    item.price = "1.5"
    assert not item.has_changed("price")
    item.price = "1.51"
    assert item.get_dirty_fields() == {"price": Decimal("1.50")}


def test_refresh_from_db_marks_nothing_as_changed() -> None:
    """Fixed: assignment tracking marked every field, pk included, after refresh_from_db."""
    item = loaded_item()
    TrackedItem.objects.filter(pk=item.pk).update(name="elsewhere", count=9)
    item.refresh_from_db()
    assert item.name == "elsewhere"
    assert item.get_dirty_fields() == {}
    assert_saving_writes_nothing(item)


def test_refresh_of_some_fields_forgets_only_their_changes() -> None:
    item = loaded_item()
    item.name = "b"
    item.count = 5
    item.refresh_from_db(fields=["count"])
    assert item.get_dirty_fields() == {"name": "a"}


def test_loading_a_deferred_field_is_not_a_change() -> None:
    """Fixed: loading a deferred field marked it and the pk."""
    created = TrackedItem.objects.create(name="a", notes="long")
    item = TrackedItem.objects.defer("notes").get(pk=created.pk)
    assert item.notes == "long"
    assert item.get_dirty_fields() == {}
    item.name = "b"
    with CaptureQueriesContext(connection) as ctx:
        item.save()
    (sql,) = updates(ctx)
    assert "notes" not in sql


def test_foreign_key_is_tracked_by_attname_whether_object_or_id_is_assigned() -> None:
    ann, bob = CoreAuthor.objects.create(name="ann"), CoreAuthor.objects.create(name="bob")
    item = loaded_item(author=ann)
    item.author = bob
    assert item.get_dirty_fields() == {"author": ann.pk}
    assert item.has_changed("author_id")
    item.author_id = ann.pk
    assert not item.has_changed("author")
    item.author_id = bob.pk
    assert item.author == bob  # the cached related object was invalidated


def test_in_place_mutation_of_json_is_detected_and_saved() -> None:
    """Fixed: in-place edits of a JSON dict were neither detected nor saved."""
    item = loaded_item(data={"tags": ["a"]})
    item.data["tags"].append("b")
    assert item.get_dirty_fields() == {"data": {"tags": ["a"]}}
    item.save()
    assert TrackedItem.objects.get(pk=item.pk).data == {"tags": ["a", "b"]}
    assert not item.is_dirty()
    item.data["tags"].append("c")  # tracked again after the save
    assert item.has_changed("data")


def test_edits_through_a_reference_held_across_a_save_are_seen() -> None:
    item = loaded_item(data={"k": 1})
    data = item.data
    data["k"] = 2
    item.save()
    data["k"] = 3
    assert item.get_dirty_fields() == {"data": {"k": 2}}
    item.save()
    assert TrackedItem.objects.get(pk=item.pk).data == {"k": 3}


def test_reading_json_without_changing_it_is_not_a_change() -> None:
    item = loaded_item(data={"k": 1})
    assert item.data == {"k": 1}
    assert not item.is_dirty()


def test_replacing_a_read_json_value_keeps_the_original_as_previous() -> None:
    item = loaded_item(data={"k": 1})
    item.data["k"] = 2
    item.data = {"k": 3}
    assert item.previous("data") == {"k": 1}


def test_an_expression_is_a_change_and_is_reloaded_after_save() -> None:
    item = loaded_item(count=1)
    item.count = F("count") + 1
    assert item.has_changed("count")
    item.save()
    # Django < 6.0 defers the field (reloaded on access); 6.0+ reads it back on save.
    assert item.count == 2
    assert_saving_writes_nothing(item)  # nothing changed: the expression is not applied twice
    assert TrackedItem.objects.get(pk=item.pk).count == 2


def test_save_after_changing_one_field_issues_one_update_of_that_column() -> None:
    item = loaded_item()
    item.count = 7
    with CaptureQueriesContext(connection) as ctx:
        item.save()
    assert len(ctx.captured_queries) == 1
    (sql,) = updates(ctx)
    set_clause = sql.split(" WHERE ")[0]
    assert "count" in set_clause
    for other in ("name", "price", "flag", "data", "notes", "author_id"):
        assert other not in set_clause
    assert TrackedItem.objects.get(pk=item.pk).count == 7


def test_save_without_changes_issues_no_query() -> None:
    assert_saving_writes_nothing(loaded_item())


def test_explicit_update_fields_are_respected() -> None:
    item = loaded_item()
    item.name = "b"
    item.count = 3
    item.save(update_fields=["count"])
    assert stored_values(item, "name", "count") == ("a", 3)
    assert item.get_dirty_fields() == {"name": "a"}


@pytest.mark.django_db(databases=["default", "other"])
def test_saving_to_another_database_is_a_full_save() -> None:
    item = loaded_item(count=5, notes="kept")
    item.name = "b"
    item.save(using="other")
    copied = TrackedItem.objects.using("other").get(pk=item.pk)
    assert (copied.name, copied.count, copied.notes) == ("b", 5, "kept")


def test_new_instance_is_inserted_whole_and_then_tracked() -> None:
    item = TrackedItem(name="new")
    assert item.get_dirty_fields() == {}
    item.save()
    item.name = "renamed"
    assert item.get_dirty_fields() == {"name": "new"}


def test_a_failed_save_keeps_the_changes() -> None:
    item = loaded_item()
    item.name = "b"
    with pytest.raises(TypeError, match="nope"):
        item.save(nope=True)
    assert item.has_changed("name")


def test_a_partial_save_of_a_deleted_row_raises_instead_of_inserting() -> None:
    item = loaded_item()
    TrackedItem.objects.filter(pk=item.pk).delete()
    item.name = "b"
    with pytest.raises(DatabaseError, match="did not affect any rows"), transaction.atomic():
        item.save()
    assert not TrackedItem.objects.filter(pk=item.pk).exists()


def test_tracking_only_mixin_keeps_full_saves() -> None:
    item = TrackedOnly.objects.create(name="a")
    item = TrackedOnly.objects.get(pk=item.pk)
    item.count = 2
    assert item.get_dirty_fields() == {"count": 0}
    with CaptureQueriesContext(connection) as ctx:
        item.save()
    (sql,) = updates(ctx)
    assert "name" in sql.split(" WHERE ")[0]
    assert not item.is_dirty()


def test_multi_table_child_updates_only_the_changed_table() -> None:
    child = TrackedChild.objects.create(name="p", extra="c")
    child = TrackedChild.objects.get(pk=child.pk)
    child.extra = "changed"
    with CaptureQueriesContext(connection) as ctx:
        child.save()
    statements = updates(ctx)
    assert len(statements) == 1
    assert "extra" in statements[0]


def test_composite_primary_key_models_are_tracked_and_saved() -> None:
    """Fixed: composite pks failed with ValueError on save."""
    CompositeItem.objects.create(tenant=1, code="a", value=1)
    item = CompositeItem.objects.get(pk=(1, "a"))
    item.value = 2
    with CaptureQueriesContext(connection) as ctx:
        item.save()
    (sql,) = updates(ctx)
    assert "value" in sql.split(" WHERE ")[0]
    assert CompositeItem.objects.get(pk=(1, "a")).value == 2
    assert item.get_dirty_fields() == {}


def test_changing_a_composite_pk_part_saves_a_copy() -> None:
    CompositeItem.objects.create(tenant=1, code="a", value=1)
    item = CompositeItem.objects.get(pk=(1, "a"))
    item.code = "b"
    assert item.get_dirty_fields() == {"code": "a"}
    item.save()
    assert sorted(CompositeItem.objects.values_list("code", flat=True)) == ["a", "b"]


def test_auto_now_fields_join_a_partial_save() -> None:
    item = StampedItem.objects.create(name="a")
    item = StampedItem.objects.get(pk=item.pk)
    before = item.updated_at
    item.count = 1
    with CaptureQueriesContext(connection) as ctx:
        item.save()
    (sql,) = updates(ctx)
    assert "updated_at" in sql
    assert StampedItem.objects.get(pk=item.pk).updated_at > before


def test_call_fields_pre_save_before_auto_update_writes_auto_now() -> None:
    item = PreSaveItem.objects.create(name="a")
    item = PreSaveItem.objects.get(pk=item.pk)
    before = item.touched_at
    item.save(update_fields=["name"])
    assert PreSaveItem.objects.get(pk=item.pk).touched_at > before


def test_init_signals_still_fire_on_load() -> None:
    seen: list[str] = []

    def on_pre(sender: type, **kwargs: object) -> None:
        seen.append("pre")

    def on_post(sender: type, instance: TrackedItem, **kwargs: object) -> None:
        seen.append(f"post:{instance.name}")

    TrackedItem.objects.create(name="sig")
    pre_init.connect(on_pre, sender=TrackedItem)
    post_init.connect(on_post, sender=TrackedItem)
    try:
        list(TrackedItem.objects.all())
    finally:
        pre_init.disconnect(on_pre, sender=TrackedItem)
        post_init.disconnect(on_post, sender=TrackedItem)
    assert seen == ["pre", "post:sig"]


def test_loaded_instance_matches_a_plain_django_load() -> None:
    TrackedItem.objects.create(name="same", count=3, data={"a": 1})
    fast = TrackedItem.objects.get(name="same")
    plain = TrackedItem._meta.base_manager.get(name="same")
    assert fast.__dict__.keys() == plain.__dict__.keys()
    assert {k: v for k, v in fast.__dict__.items() if k != "_state"} == {
        k: v for k, v in plain.__dict__.items() if k != "_state"
    }
    assert (fast._state.adding, fast._state.db) == (False, plain._state.db)
    deferred = TrackedItem.objects.only("name").get(name="same")
    assert deferred.get_deferred_fields() >= {"count", "data"}


def test_copies_and_pickles_do_not_share_change_records() -> None:
    item = loaded_item()
    item.name = "b"
    clone = copy.copy(item)
    clone.name = "a"
    assert item.has_changed("name")
    restored = pickle.loads(pickle.dumps(item))
    assert restored.get_dirty_fields() == {"name": "a"}


def test_reset_changes_forgets_changes_written_another_way() -> None:
    item = loaded_item()
    item.name = "b"
    item.count = 2
    TrackedItem.objects.bulk_update([item], ["name"])
    item.reset_changes(["name"])
    assert item.get_dirty_fields() == {"count": 0}
    item.reset_changes()
    assert not item.is_dirty()


def test_unknown_field_names_are_a_clear_error() -> None:
    item = loaded_item()
    with pytest.raises(ValueError, match="no concrete field named 'nope'"):
        item.has_changed("nope")


def test_asave_writes_only_the_changed_field_and_refuses_unknown_options() -> None:
    item = loaded_item()
    item.count = 4
    with CaptureQueriesContext(connection) as ctx:
        async_to_sync(item.asave)()
    (sql,) = updates(ctx)
    assert "name" not in sql.split(" WHERE ")[0]
    assert TrackedItem.objects.get(pk=item.pk).count == 4
    with pytest.raises(TypeError, match="bogus"):
        async_to_sync(item.asave)(bogus=1)
