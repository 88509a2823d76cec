"""The database store: one query to consume, transactions respected, expired rows purged."""

from __future__ import annotations

import datetime
from io import StringIO
from types import ModuleType
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from keel.models import ActionCounter, ActionToken
from keel.tokens import (
    DatabaseTokenStore,
    JsonActionTokenDatabaseManager,
    OneTimeCodeManager,
    TooManyCodes,
    database_store,
)
from keel.tokens.database_store import database_now, supports_delete_returning

pytestmark = pytest.mark.django_db


#: Statements that only delimit a transaction or a savepoint.
TRANSACTION = {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}


@pytest.fixture
def manager() -> JsonActionTokenDatabaseManager:
    return JsonActionTokenDatabaseManager(prefix="test:db")


def expire(token: str, manager: JsonActionTokenDatabaseManager, using: str = "default") -> None:
    past = timezone.now() - datetime.timedelta(seconds=1)
    ActionToken.objects.using(using).filter(digest=manager.digest(token)).update(expires_at=past)


def test_delete_returning_is_used_where_the_backend_has_it() -> None:
    backend: Any = connection  # vendor-specific attributes below
    if connection.vendor == "postgresql":
        expected = True
    elif connection.vendor == "sqlite":
        expected = backend.Database.sqlite_version_info >= (3, 35)
    else:
        expected = backend.mysql_is_mariadb and backend.mysql_version >= (10, 5)
    assert supports_delete_returning(connection) is expected


# transaction=True: a consume outside any transaction, as a request without ATOMIC_REQUESTS
# makes it (inside one, PostgreSQL adds a savepoint).
@pytest.mark.django_db(transaction=True)
def test_consume_is_one_query_with_delete_returning(
    manager: JsonActionTokenDatabaseManager,
) -> None:
    if not supports_delete_returning(connection):
        pytest.skip(f"{connection.display_name} has no DELETE RETURNING")
    token = manager.create_token({"a": 1})
    with CaptureQueriesContext(connection) as queries:
        assert manager.consume_token(token) == {"a": 1}
    assert len(queries) == 1
    assert "RETURNING" in queries[0]["sql"].upper()


def test_consume_without_returning_is_a_read_and_a_conditional_delete() -> None:
    manager = JsonActionTokenDatabaseManager(
        prefix="test:db", store=DatabaseTokenStore(delete_returning=False)
    )
    token = manager.create_token({"a": 1})
    with CaptureQueriesContext(connection) as queries:
        assert manager.consume_token(token) == {"a": 1}
    statements = [q["sql"].split()[0].upper() for q in queries]
    assert [word for word in statements if word not in TRANSACTION] == ["SELECT", "DELETE"]
    with CaptureQueriesContext(connection) as queries:
        assert manager.consume_token(token) is None
    statements = [q["sql"].split()[0].upper() for q in queries]
    assert [word for word in statements if word not in TRANSACTION] == ["SELECT"]


def test_peek_is_one_query_and_create_one_insert(manager: JsonActionTokenDatabaseManager) -> None:
    with CaptureQueriesContext(connection) as queries:
        token = manager.create_token({"a": 1})
    assert [q["sql"].split()[0].upper() for q in queries if "SAVEPOINT" not in q["sql"]] == [
        "INSERT"
    ]
    with CaptureQueriesContext(connection) as queries:
        manager.get_token_data(token)
    assert len(queries) == 1


def test_expired_rows_are_never_returned_even_before_a_purge(
    manager: JsonActionTokenDatabaseManager,
) -> None:
    token = manager.create_token({"a": 1})
    expire(token, manager)
    assert ActionToken.objects.filter(digest=manager.digest(token)).exists()
    assert manager.get_token_data(token) is None
    assert manager.consume_token(token) is None


def test_a_consume_rolled_back_with_its_transaction_gives_the_token_back(
    manager: JsonActionTokenDatabaseManager,
) -> None:
    token = manager.create_token({"a": 1})
    consumed: list[object] = []

    def failing_action() -> None:
        with transaction.atomic():
            consumed.append(manager.consume_token(token))
            raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        failing_action()
    assert consumed == [{"a": 1}]
    assert manager.consume_token(token) == {"a": 1}


def test_a_create_rolled_back_leaves_no_token(manager: JsonActionTokenDatabaseManager) -> None:
    tokens: list[str] = []

    def failing_request() -> None:
        with transaction.atomic():
            tokens.append(manager.create_token({"a": 1}))
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        failing_request()
    assert manager.get_token_data(tokens[0]) is None


def test_subject_tokens_replace_each_other_in_one_transaction(
    manager: JsonActionTokenDatabaseManager,
) -> None:
    for _ in range(3):
        manager.create_token({"a": 1}, subject="user-1")
    subject = manager.subject_digest("user-1")
    assert ActionToken.objects.filter(purpose="test:db", subject=subject).count() == 1


def test_rows_record_purpose_subject_and_expiry(manager: JsonActionTokenDatabaseManager) -> None:
    before = timezone.now()
    token = manager.create_token({"a": 1}, ttl_seconds=90, subject=7)
    row = ActionToken.objects.get()
    assert (row.digest, row.purpose) == (manager.digest(token), "test:db")
    assert row.subject == manager.subject_digest(7)
    assert before <= row.created_at <= timezone.now()
    assert row.expires_at - row.created_at == datetime.timedelta(seconds=90)
    assert str(row) == f"test:db token {row.digest[:12]}"


@pytest.mark.django_db(databases=["default", "other"])
def test_using_names_the_database_of_the_tokens() -> None:
    manager = JsonActionTokenDatabaseManager(prefix="test:db", using="other")
    token = manager.create_token({"a": 1})
    assert ActionToken.objects.using("other").count() == 1
    assert ActionToken.objects.using("default").count() == 0
    assert JsonActionTokenDatabaseManager(prefix="test:db").get_token_data(token) is None
    with CaptureQueriesContext(connections["other"]) as queries:
        assert manager.consume_token(token) == {"a": 1}
    assert queries


# -- purge ----------------------------------------------------------------------------------


def test_purge_command_deletes_only_expired_rows(manager: JsonActionTokenDatabaseManager) -> None:
    live = [manager.create_token({"i": i}) for i in range(3)]
    for i in range(5):
        expire(manager.create_token({"i": i}), manager)
    out = StringIO()
    call_command("keel_purge_tokens", "--batch-size", "2", stdout=out)
    assert out.getvalue().strip() == "Deleted 5 expired action tokens."
    assert ActionToken.objects.count() == 3
    assert all(manager.get_token_data(token) is not None for token in live)


def test_purge_command_also_deletes_expired_code_counters() -> None:
    codes = OneTimeCodeManager("test:codes", store=DatabaseTokenStore())
    codes.issue_code("ada")
    codes.issue_code("bob")
    counters = ActionCounter.objects.count()  # issued counts and the subjects' lock rows
    first = ActionCounter.objects.values_list("pk", flat=True).first()
    past = timezone.now() - datetime.timedelta(seconds=1)
    ActionCounter.objects.filter(pk=first).update(expires_at=past)
    assert DatabaseTokenStore().purge_expired_counters(batch_size=1, dry_run=True) == 1
    out = StringIO()
    call_command("keel_purge_tokens", "--batch-size", "1", stdout=out)
    assert out.getvalue().strip() == "Deleted 0 expired action tokens and 1 code counter."
    assert ActionCounter.objects.count() == counters - 1


def test_purge_command_dry_run_only_counts(manager: JsonActionTokenDatabaseManager) -> None:
    expire(manager.create_token({"a": 1}), manager)
    out = StringIO()
    call_command("keel_purge_tokens", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "1 expired action token would be deleted (dry run)."
    assert ActionToken.objects.count() == 1


@pytest.mark.django_db(databases=["default", "other"])
def test_purge_command_database_option() -> None:
    manager = JsonActionTokenDatabaseManager(prefix="test:db", using="other")
    expire(manager.create_token({"a": 1}), manager, using="other")
    default_manager = JsonActionTokenDatabaseManager(prefix="test:db")
    expire(default_manager.create_token({"a": 1}), default_manager)
    call_command("keel_purge_tokens", "--database", "other", stdout=StringIO())
    assert ActionToken.objects.using("other").count() == 0
    assert ActionToken.objects.using("default").count() == 1


def test_purge_command_refuses_a_bad_batch_size() -> None:
    with pytest.raises(CommandError, match="--batch-size must be a positive integer, got 0"):
        call_command("keel_purge_tokens", "--batch-size", "0", stdout=StringIO())


def test_purge_expired_refuses_a_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        DatabaseTokenStore().purge_expired(batch_size=0)


class ClockAhead:
    """The ``timezone`` module as an app server whose clock is two hours ahead sees it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(timezone, name)

    @staticmethod
    def now() -> datetime.datetime:
        return timezone.now() + datetime.timedelta(hours=2)


def test_the_codes_window_is_measured_on_the_database_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codes = OneTimeCodeManager("code:clock", store=DatabaseTokenStore())
    for _ in range(codes.max_codes):
        codes.issue_code("ada")
    # Another app server, whose clock is past the window of the codes issued: the window
    # still holds them, and so do the attempts counted on the codes.
    monkeypatch.setattr(database_store, "timezone", ClockAhead())
    with pytest.raises(TooManyCodes):
        codes.issue_code("ada")
    assert abs(database_now("default") - timezone.now()) < datetime.timedelta(seconds=5)


def test_keel_clock_moves_the_database_clock_of_the_codes_window(clock: ModuleType) -> None:
    codes = OneTimeCodeManager("code:advance", store=DatabaseTokenStore())
    for _ in range(codes.max_codes):
        codes.issue_code("ada")
    with pytest.raises(TooManyCodes):
        codes.issue_code("ada")
    clock.advance(codes.window_seconds)
    assert database_now("default") - timezone.now() > datetime.timedelta(
        seconds=codes.window_seconds - 5
    )
    assert codes.verify_code("ada", codes.issue_code("ada")) == {}
