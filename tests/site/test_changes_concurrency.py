"""site_settings_changed under concurrency, with values the database keeps in another form,
and with receivers that raise: the save behaves like a plain model's save and the signal
reports what the database holds."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from keel.signals import site_settings_changed
from keel.site.changes import MASK
from tests.conftest import in_threads
from tests.testapp.models.site import (
    Brand,
    SiteSettings,
    StoredFormChildSettings,
    StoredFormSettings,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def received() -> Iterator[list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        sent.append(kwargs["changes"])

    site_settings_changed.connect(receiver)
    try:
        yield sent
    finally:
        site_settings_changed.disconnect(receiver)


def stored() -> StoredFormSettings:
    StoredFormSettings.load()
    return StoredFormSettings.objects.get()


def run_while_held(hold: Callable[[], None], other: Callable[[], None]) -> list[BaseException]:
    """Run ``hold`` in a thread inside ``atomic()`` for one second after it returns, and
    ``other`` in a second thread meanwhile; the errors either raised."""
    inside = threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                hold()
                inside.set()
                time.sleep(1.0)
        finally:
            inside.set()

    def second() -> None:
        inside.wait()
        other()

    _, errors = in_threads(lambda i, _: (first, second)[i](), 2)
    return errors


def labelled(value: str) -> Callable[[], None]:
    def save() -> None:
        row = StoredFormSettings.objects.get()
        row.label = value
        row.save()

    return save


def test_a_save_waits_for_a_concurrent_save_like_a_plain_model(
    received: list[dict[str, Any]],
) -> None:
    brand = Brand.objects.create(name="x")

    def named(value: str) -> Callable[[], None]:
        def save() -> None:
            row = Brand.objects.get(pk=brand.pk)
            row.name = value
            row.save()

        return save

    assert run_while_held(named("A"), named("B")) == []  # the plain model: the baseline
    stored()
    assert run_while_held(labelled("A"), labelled("B")) == []
    assert StoredFormSettings.objects.get().label == "B"
    assert received == [{"label": ("", "A")}, {"label": ("A", "B")}]


def test_a_save_waits_for_a_concurrent_update(received: list[dict[str, Any]]) -> None:
    stored()

    def update() -> None:
        StoredFormSettings.objects.update(label="A")

    assert run_while_held(update, labelled("B")) == []
    assert received == [{"label": ("A", "B")}]


def test_a_decimal_the_database_rounds_is_reported_once(received: list[dict[str, Any]]) -> None:
    settings = stored()
    settings.amount = Decimal("1.005")
    settings.save()
    kept = StoredFormSettings.objects.get().amount
    assert received == [{"amount": ("0.00", str(kept))}]
    settings.save()
    settings.save(update_fields=["amount"])
    assert len(received) == 1


def test_decimals_spelled_otherwise_are_no_change(received: list[dict[str, Any]]) -> None:
    settings = stored()
    settings.amount = Decimal("2.50")
    settings.save()
    for spelling in (Decimal("2.5"), 2.5, "2.500"):
        settings.amount = spelling  # type: ignore[assignment]
        settings.save()
    assert received == [{"amount": ("0.00", "2.50")}]


def test_json_the_database_keeps_as_a_list_is_reported_once(
    received: list[dict[str, Any]],
) -> None:
    settings = stored()
    settings.data = {"b": (1, 2), "a": 1}
    settings.save()
    settings.save()
    assert len(received) == 1
    assert set(received[0]) == {"data"}
    assert StoredFormSettings.objects.get().data == {"a": 1, "b": [1, 2]}


def test_long_values_differing_past_the_cut_are_shown_apart(
    received: list[dict[str, Any]],
) -> None:
    settings = stored()
    settings.label = "x" * 100
    settings.save()
    settings.label = "x" * 99 + "y"
    settings.save()
    old, new = received[1]["label"]
    assert old != new
    assert old.startswith("…") and new.startswith("…")
    assert old.endswith("x") and new.endswith("y")
    assert max(len(old), len(new)) <= 80
    settings.label = "x" * 50 + "y" + "x" * 100
    settings.save()
    old, new = received[2]["label"]
    assert old != new and old.endswith("…") and new.endswith("…")
    assert len(old) == len(new) == 80


def test_a_receiver_that_raises_breaks_neither_the_save_nor_other_receivers(
    received: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    def broken_receiver(**kwargs: Any) -> None:
        raise ValueError("receiver bug")

    site_settings_changed.connect(broken_receiver)
    later: list[str] = []
    try:
        settings = stored()
        settings.label = "committed"
        with caplog.at_level(logging.ERROR):
            settings.save()
            with transaction.atomic():
                settings.label = "again"
                settings.save()
                transaction.on_commit(lambda: later.append("ran"))
    finally:
        site_settings_changed.disconnect(broken_receiver)
    assert StoredFormSettings.objects.get().label == "again"
    assert received == [{"label": ("", "committed")}, {"label": ("committed", "again")}]
    assert later == ["ran"]
    errors = [r for r in caplog.records if "broken_receiver" in r.getMessage()]
    assert len(errors) == 2
    assert {r.name for r in errors} == {"django.dispatch"}
    assert all(isinstance(r.exc_info[1], ValueError) for r in errors if r.exc_info)


def test_update_fields_empty_writes_nothing(received: list[dict[str, Any]]) -> None:
    settings = SiteSettings.objects.get()
    before = settings.updated_at
    time.sleep(0.01)
    settings.site_name = "Not saved"
    settings.save(update_fields=[])
    row = SiteSettings.objects.get()
    assert (row.updated_at, row.site_name) == (before, "keel")
    assert received == []


def test_a_multi_table_child_reports_its_parent_and_own_fields(
    received: list[dict[str, Any]],
) -> None:
    StoredFormChildSettings.load()
    child = StoredFormChildSettings.objects.get()
    child.label = "parent field"
    child.extra = "child field"
    child.amount = Decimal("1.005")
    child.save()
    kept = StoredFormChildSettings.objects.get().amount
    assert received == [
        {"label": ("", "parent field"), "extra": ("", "child field"), "amount": ("0.00", str(kept))}
    ]
    child.save()
    assert len(received) == 1


def test_a_secret_changed_to_another_value_shows_the_mask_on_both_sides(
    received: list[dict[str, Any]],
) -> None:
    settings = SiteSettings.objects.get()
    settings.stripe_secret_key = "sk_live_first"
    settings.save()
    settings.stripe_secret_key = "sk_live_second"
    settings.save()
    assert received == [{"stripe_secret_key": ("", MASK)}, {"stripe_secret_key": (MASK, MASK)}]
    assert "sk_live" not in repr(received)


def test_update_fields_may_be_any_iterable(received: list[dict[str, Any]]) -> None:
    settings = SiteSettings.objects.get()
    settings.phone = "42"
    settings.save(update_fields=(name for name in ["phone"]))
    assert SiteSettings.objects.get().phone == "42"
    assert received == [{"phone": ("", "42")}]
