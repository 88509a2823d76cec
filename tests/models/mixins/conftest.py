"""Helpers of the tests of ``keel.models.mixins``."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from keel.exceptions import DatabaseUpdatePreconditionsError
from tests.testapp.models.mixins_core import TrackedItem


def updates(queries: CaptureQueriesContext) -> list[str]:
    """The ``UPDATE`` statements among the captured ``queries``."""
    return [q["sql"] for q in queries.captured_queries if q["sql"].upper().startswith("UPDATE")]


def assert_a_concurrent_transition_is_refused(
    instance: Any, theirs: Any, mine: Any, **changes: Any
) -> None:
    """Another writer moves the row of ``instance`` to the state ``theirs``; saving
    ``instance`` moved to ``mine`` with ``changes`` is refused and writes none of them."""
    model = type(instance)
    model.objects.filter(pk=instance.pk).update(state=theirs)
    before = {name: getattr(instance, name) for name in changes}
    instance.state = mine
    for name, value in changes.items():
        setattr(instance, name, value)
    with pytest.raises(DatabaseUpdatePreconditionsError):
        instance.save()
    stored = model.objects.get(pk=instance.pk)
    assert {name: getattr(stored, name) for name in changes} == before


def stored_values(item: TrackedItem, *fields: str) -> tuple[Any, ...]:
    """The values of ``fields`` in the database row of ``item``."""
    return tuple(TrackedItem.objects.values_list(*fields).get(pk=item.pk))


def assert_saving_writes_nothing(item: TrackedItem) -> None:
    """Saving ``item`` runs no query."""
    with CaptureQueriesContext(connection) as ctx:
        item.save()
    assert ctx.captured_queries == []


def loaded_item(**values: Any) -> TrackedItem:
    """A ``TrackedItem`` of ``values`` (``name`` "a" unless given), saved and loaded back:
    tracking starts from the loaded row."""
    values.setdefault("name", "a")
    return TrackedItem.objects.get(pk=TrackedItem.objects.create(**values).pk)
