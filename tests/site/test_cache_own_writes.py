"""A transaction that wrote a cached model reads its own rows until it ends: under manual
transaction management too, and after a test ran its on-commit callbacks early. A listener
that replaces another never vouches for the stamps the old one handed out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import transaction

from keel.site.cache import reset_process_state
from keel.site.documents import generation_key
from keel.site.tracking import get_listener, reset_listener
from tests.reliability import servers
from tests.site.test_verdicts import changed_elsewhere, save_phone, tracked, warm
from tests.testapp.models.site import SiteSettings


class _Rollback(Exception):
    pass


@pytest.fixture(params=["process", "redis"])
def store(request: pytest.FixtureRequest, settings: Any) -> None:
    """Every test runs with the process copy alone, then with Redis and tracking; the phone
    "old" is saved and read warm."""
    if request.param == "redis":
        tracked(settings, request.getfixturevalue("server"))
    else:
        settings.KEEL = {
            **settings.KEEL,
            "SITE_SETTINGS_LOCAL_TTL": 30,
            "SITE_SETTINGS_VERIFY_INTERVAL": 30,
        }
        reset_process_state()
    save_phone("old")
    warm("old")


@contextmanager
def manual_transactions() -> Iterator[None]:
    """Autocommit off inside (the code commits or rolls back itself), on again after."""
    transaction.set_autocommit(False)
    try:
        yield
    finally:
        transaction.set_autocommit(True)


@pytest.mark.django_db(transaction=True)
def test_a_manual_transaction_reads_its_own_write(store: None) -> None:
    with manual_transactions():
        save_phone("new")
        inside = [SiteSettings.load().phone for _ in range(3)]
        transaction.commit()
        after_commit = SiteSettings.load().phone
        transaction.commit()  # the read began the next transaction
    after = [SiteSettings.load().phone for _ in range(3)]
    assert (inside, after_commit, after) == (["new"] * 3, "new", ["new"] * 3)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_manual_transaction_is_never_served(store: None) -> None:
    with manual_transactions():
        save_phone("rolled-back")
        inside = SiteSettings.load().phone
        transaction.rollback()
    after = [SiteSettings.load().phone for _ in range(3)]
    assert (inside, after) == ("rolled-back", ["old"] * 3)


@pytest.mark.django_db(transaction=True)
def test_the_warm_read_comes_back_after_a_manual_transaction(store: None) -> None:
    with manual_transactions():
        save_phone("new")
        transaction.commit()
    warm("new")


@pytest.mark.django_db(transaction=True)
def test_own_write_is_read_after_on_commit_callbacks_ran_early(
    store: None, django_capture_on_commit_callbacks: Any
) -> None:
    inside: list[str] = []

    def write_read_and_roll_back() -> None:
        with transaction.atomic():
            with django_capture_on_commit_callbacks(execute=True) as callbacks:
                save_phone("new")
            assert callbacks
            inside.extend(SiteSettings.load().phone for _ in range(3))
            raise _Rollback

    with pytest.raises(_Rollback):
        write_read_and_roll_back()
    after = [SiteSettings.load().phone for _ in range(3)]
    assert (inside, after) == (["new"] * 3, ["old"] * 3)


@pytest.mark.django_db(transaction=True)
def test_a_transaction_whose_callbacks_ran_early_publishes_on_commit(
    store: None, django_capture_on_commit_callbacks: Any
) -> None:
    with transaction.atomic():
        with django_capture_on_commit_callbacks(execute=True):
            save_phone("new")
        assert SiteSettings.load().phone == "new"
    warm("new")


@pytest.mark.django_db(transaction=True)
def test_a_replaced_listener_does_not_vouch_for_old_stamps(
    settings: Any, server: servers.Server
) -> None:
    listener = tracked(settings, server)
    save_phone("old")
    client = server.client()
    for i in range(5):  # the old listener's sequence moves on
        client.set(f"{listener.prefix}noise{i}", "x")
    warm("old")
    reset_listener()
    # Another process writes while this process has no listener; its invalidation is lost.
    changed_elsewhere("new")
    client.delete(generation_key(SiteSettings))
    replacement = get_listener()
    assert replacement is not None and replacement.wait_live(5)
    assert SiteSettings.load().phone == "new"
