"""What change tracking compares with after a save: the values the save wrote."""

from __future__ import annotations

import pytest

from tests.testapp.models.mixins_core import CoreAuthor, TrackedItem

pytestmark = pytest.mark.django_db


def test_in_place_edit_of_a_json_value_assigned_then_saved_is_tracked() -> None:
    item = TrackedItem.objects.get(pk=TrackedItem.objects.create(name="i").pk)
    data: dict[str, list[str]] = {"tags": []}
    item.data = data
    item.save()
    data["tags"].append("news")  # the instance's own value, edited in place
    assert item.is_dirty()
    item.save()
    assert TrackedItem.objects.get(pk=item.pk).data == {"tags": ["news"]}


def test_in_place_edit_of_a_json_value_passed_to_create_is_tracked() -> None:
    data: dict[str, list[str]] = {"tags": []}
    item = TrackedItem.objects.create(name="i", data=data)
    data["tags"].append("news")
    assert item.get_dirty_fields() == {"data": {"tags": []}}
    item.save()
    assert TrackedItem.objects.get(pk=item.pk).data == {"tags": ["news"]}


def test_a_related_object_saved_after_its_assignment_is_written() -> None:
    """Django's assign-then-save idiom: the id is taken from the object when the parent is
    saved, so it must count as a change then."""
    item = TrackedItem.objects.get(pk=TrackedItem.objects.create(name="i").pk)
    author = CoreAuthor(name="Bob")
    item.author = author  # not saved yet: author_id stays None
    author.save()
    item.save()
    assert TrackedItem.objects.get(pk=item.pk).author_id == author.pk
    assert not item.is_dirty()
