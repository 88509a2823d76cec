"""One contract, every store: the same assertions for Redis and the database.

Stores under test: Redis; the database with ``DELETE … RETURNING`` where the backend has it;
the database with the read-then-conditional-delete strategy (MySQL's), forced on every
backend so that it is proved on all three.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import math
import multiprocessing
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from keel import clock as keel_clock
from keel import redis as keel_redis
from keel.models import ActionToken
from keel.tokens import (
    InvalidPayload,
    JsonActionTokenManager,
    OneTimeCodeManager,
    StateBinding,
    TooManyCodes,
    UserStateBinding,
)
from keel.tokens.manager import MAX_INT_DIGITS
from tests.conftest import at_once
from tests.testapp.models.tokens import TokenAccount
from tests.tokens.conftest import STORES, consume_race, dump_redis, dump_table, manager_on

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0"

#: Strings that are not tokens: each must be refused without touching the store.
BAD_TOKENS = [
    "",
    "other:x",
    "x" * 10_240,
    "é" * 43,
    "ü" * 20 + "a" * 23,
    "a" * 42,
    "a" * 44,
    "a" * 42 + "+",
    "a" * 42 + "/",
    "a" * 42 + "=",
    "a" * 42 + "\n",
    "a" * 41 + "\x00a",
    " " + "a" * 42,
    "*" * 43,
    "a" * 20 + ":" + "b" * 22,
]


@dataclass
class Case:
    """A store under test: its manager and what the contract needs to look inside it."""

    kind: str
    manager: JsonActionTokenManager
    #: A context in which any I/O to the store fails the test.
    no_io: Callable[[], AbstractContextManager[None]]
    #: Every stored key and value, as text.
    dump: Callable[[], list[str]]

    def other(self, prefix: str) -> JsonActionTokenManager:
        """A manager of another purpose on the same store."""
        return type(self.manager)(prefix=prefix, store=self.manager.store)

    def bound(self, state: StateBinding) -> JsonActionTokenManager:
        """A manager of this purpose and store whose tokens are bound to ``state``."""
        return type(self.manager)(prefix=self.manager.prefix, store=self.manager.store, state=state)

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass for the lifetimes of tokens and codes: Redis expires keys on
        its own clock (a real wait); the database store reads keel's clock, or the database's
        moved by as much, moved instead."""
        if self.kind == "redis":
            time.sleep(seconds)
        else:
            keel_clock.advance(seconds)


@contextmanager
def no_queries() -> Iterator[None]:
    with CaptureQueriesContext(connections["default"]) as queries:
        yield
    assert len(queries) == 0, [q["sql"] for q in queries]


@pytest.fixture(params=STORES)
def case(request: pytest.FixtureRequest, clock: ModuleType) -> Case:
    manager = manager_on(request, request.param, f"contract:{uuid.uuid4().hex[:8]}")
    if request.param == "redis":
        client = request.getfixturevalue("keel_redis")
        return Case("redis", manager, dead_redis, lambda: dump_redis(client))
    return Case(request.param, manager, no_queries, dump_table)


@contextmanager
def dead_redis() -> Iterator[None]:
    # Any command would raise TokenStoreUnavailable: answering proves no command was sent.
    with override_settings(KEEL={**django_settings.KEEL, "REDIS_URL": DEAD_REDIS}):
        yield


def test_created_token_is_url_safe_and_43_characters(case: Case) -> None:
    token = case.manager.create_token({"user_id": 1})
    assert len(token) == 43
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_peek_leaves_the_token_and_consume_takes_it_once(case: Case) -> None:
    token = case.manager.create_token({"user_id": 7, "email": "a@example.com"})
    assert case.manager.get_token_data(token) == {"user_id": 7, "email": "a@example.com"}
    assert case.manager.get_token_data(token) == {"user_id": 7, "email": "a@example.com"}
    assert case.manager.consume_token(token) == {"user_id": 7, "email": "a@example.com"}
    assert case.manager.consume_token(token) is None
    assert case.manager.get_token_data(token) is None


def test_delete_token_reports_whether_it_existed(case: Case) -> None:
    token = case.manager.create_token({"a": 1})
    assert case.manager.delete_token(token) is True
    assert case.manager.delete_token(token) is False
    assert case.manager.get_token_data(token) is None


def test_tokens_are_distinct_and_independent(case: Case) -> None:
    first = case.manager.create_token({"n": 1})
    second = case.manager.create_token({"n": 1})
    assert first != second
    assert case.manager.consume_token(first) == {"n": 1}
    assert case.manager.get_token_data(second) == {"n": 1}


def test_token_expires_after_a_fractional_ttl(case: Case) -> None:
    token = case.manager.create_token({"a": 1}, ttl_seconds=1.25)
    kept = case.manager.create_token({"a": 2}, ttl_seconds=1.25, subject="s")
    assert case.manager.get_token_data(token) == {"a": 1}
    case.wait(1.4)
    assert case.manager.get_token_data(token) is None
    assert case.manager.consume_token(token) is None
    assert case.manager.consume_token(kept) is None


def test_fractional_hours_are_a_lifetime_not_an_error(case: Case) -> None:
    token = case.manager.create_token({"a": 1}, ttl_hours=0.5)
    assert case.manager.get_token_data(token) == {"a": 1}


@pytest.mark.parametrize("bad", BAD_TOKENS, ids=lambda s: repr(s[:12]) + f"/{len(s)}")
def test_malformed_tokens_are_refused_without_any_lookup(case: Case, bad: str) -> None:
    with case.no_io():
        assert case.manager.get_token_data(bad) is None
        assert case.manager.consume_token(bad) is None
        assert case.manager.delete_token(bad) is False


def test_non_string_tokens_are_a_type_error(case: Case) -> None:
    for bad in (None, 42, b"a" * 43):
        with case.no_io(), pytest.raises(TypeError, match="A token is a str"):
            case.manager.get_token_data(bad)  # type: ignore[arg-type]


def test_a_well_formed_unknown_token_is_none(case: Case) -> None:
    assert case.manager.get_token_data(case.manager.make_token()) is None
    assert case.manager.consume_token(case.manager.make_token()) is None


def test_tokens_of_one_purpose_are_unknown_to_another(case: Case) -> None:
    token = case.manager.create_token({"a": 1})
    other = case.other("another:purpose")
    assert other.get_token_data(token) is None
    assert other.consume_token(token) is None
    assert other.delete_token(token) is False
    assert case.manager.consume_token(token) == {"a": 1}


def test_the_store_never_holds_the_token(case: Case) -> None:
    tokens = [case.manager.create_token({"i": i}, subject=f"user{i}") for i in range(5)]
    dump = "\n".join(case.dump())
    assert dump
    for token in tokens:
        assert token not in dump
        assert case.manager.digest(token) in dump


def test_payload_round_trip_returns_the_json_form(case: Case) -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    payload = {
        "date": datetime.date(2026, 1, 31),
        "when": datetime.datetime(2026, 1, 31, 12, 30, tzinfo=datetime.UTC),
        "amount": Decimal("10.50"),
        "id": ident,
        "nested": {"list": [1, 2.5, None, True]},
        "text": "héllo ✓",
    }
    token = case.manager.create_token(payload)
    assert case.manager.consume_token(token) == {
        "date": "2026-01-31",
        "when": "2026-01-31T12:30:00Z",
        "amount": "10.50",
        "id": "12345678-1234-5678-1234-567812345678",
        "nested": {"list": [1, 2.5, None, True]},
        "text": "héllo ✓",
    }


def test_a_new_token_for_a_subject_revokes_the_previous_one(case: Case) -> None:
    first = case.manager.create_token({"n": 1}, subject=42)
    unrelated = case.manager.create_token({"n": 2}, subject=43)
    second = case.manager.create_token({"n": 3}, subject=42)
    assert case.manager.get_token_data(first) is None
    assert case.manager.get_token_data(second) == {"n": 3}
    assert case.manager.get_token_data(unrelated) == {"n": 2}


def test_subjects_are_per_purpose(case: Case) -> None:
    mine = case.manager.create_token({"n": 1}, subject="u1")
    case.other("other:flow").create_token({"n": 2}, subject="u1")
    assert case.manager.get_token_data(mine) == {"n": 1}


def test_revoke_subject_deletes_its_live_token(case: Case) -> None:
    token = case.manager.create_token({"n": 1}, subject="u1")
    kept = case.manager.create_token({"n": 2}, subject="u2")
    assert case.manager.revoke_subject("u1") == 1
    assert case.manager.revoke_subject("u1") == 0
    assert case.manager.get_token_data(token) is None
    assert case.manager.get_token_data(kept) == {"n": 2}


OLD_KEY, NEW_KEY = "the-old-secret-" * 3, "the-new-secret-" * 3
#: A rolling rotation: old workers know the old key only, new ones the new key then the old.
OLD_WORKER = {"SECRET_KEY": OLD_KEY, "SECRET_KEY_FALLBACKS": []}
NEW_WORKER = {"SECRET_KEY": NEW_KEY, "SECRET_KEY_FALLBACKS": [OLD_KEY]}


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_rolling_rotation_leaves_one_live_token_per_subject(
    case: Case, asynchronous: bool
) -> None:
    manager = case.manager
    create = async_to_sync(manager.acreate_token) if asynchronous else manager.create_token
    with override_settings(**NEW_WORKER):
        first = create({"v": 1}, subject=42)
    with override_settings(**OLD_WORKER):  # "send me the link again", served by an old worker
        second = create({"v": 2}, subject=42)
    with override_settings(**NEW_WORKER):
        assert manager.get_token_data(first) is None
        assert manager.get_token_data(second) == {"v": 2}
        third = create({"v": 3}, subject=42)
        assert manager.get_token_data(second) is None
    with override_settings(**OLD_WORKER):
        assert manager.revoke_subject(42) == 1  # the old worker finds the new worker's token
    with override_settings(**NEW_WORKER):
        assert manager.get_token_data(third) is None


def test_a_rolling_rotation_leaves_one_live_code_per_subject(case: Case) -> None:
    manager = codes(case, Resent)
    with override_settings(**NEW_WORKER):
        first = manager.issue_code("ada", {"v": 1})
    with override_settings(**OLD_WORKER):
        second = manager.issue_code("ada", {"v": 2})
    with override_settings(**NEW_WORKER):
        if first != second:  # one chance in a million that they are equal
            assert manager.verify_code("ada", first) is None
        assert manager.verify_code("ada", second) == {"v": 2}


def test_async_twins_keep_the_same_contract(case: Case) -> None:
    manager = case.manager

    async def scenario() -> list[Any]:
        token = await manager.acreate_token({"a": 1}, ttl_seconds=60, subject="s")
        peeked = await manager.aget_token_data(token)
        consumed = await manager.aconsume_token(token)
        again = await manager.aconsume_token(token)
        other = await manager.acreate_token({"b": 2})
        deleted = await manager.adelete_token(other)
        gone = await manager.aget_token_data(other)
        third = await manager.acreate_token({"c": 3}, subject="s")
        revoked = await manager.arevoke_subject("s")
        malformed = await manager.aconsume_token("other:x")
        return [peeked, consumed, again, deleted, gone, revoked, malformed, third]

    # async_to_sync runs the database calls on this thread, inside the test's transaction.
    result = async_to_sync(scenario)()
    assert result[:7] == [{"a": 1}, {"a": 1}, None, True, None, 1, None]
    assert manager.get_token_data(result[7]) is None


def test_async_and_sync_calls_share_tokens(case: Case) -> None:
    token = case.manager.create_token({"a": 1})
    assert async_to_sync(case.manager.aconsume_token)(token) == {"a": 1}
    assert case.manager.get_token_data(token) is None


def test_async_malformed_tokens_need_no_lookup(case: Case) -> None:
    async def scenario() -> list[Any]:
        return [
            await case.manager.aget_token_data("other:x"),
            await case.manager.aconsume_token(""),
            await case.manager.adelete_token("x" * 10_240),
        ]

    with case.no_io():
        assert asyncio.run(scenario()) == [None, None, False]


# -- a payload creation accepted is always consumable ------------------------------------------


def _nested(depth: int) -> dict[str, Any]:
    payload: dict[str, Any] = {"leaf": True}
    for _ in range(depth - 1):
        payload = {"next": payload}
    return payload


def _with_spare_stack(spare: int, function: Callable[[], Any]) -> Any:
    """``function()`` called with only ``spare`` levels of the recursion limit left."""
    frame, used = sys._getframe(), 0
    while frame is not None:
        used += 1
        frame = frame.f_back

    def descend(levels: int) -> Any:
        return descend(levels - 1) if levels > 0 else function()

    return descend(sys.getrecursionlimit() - used - spare)


def _deepest(case: Case) -> JsonActionTokenManager:
    from keel.tokens.manager import MAX_PAYLOAD_DEPTH

    deepest = type("Deepest", (type(case.manager),), {"max_payload_depth": MAX_PAYLOAD_DEPTH})
    manager: JsonActionTokenManager = deepest(prefix=case.manager.prefix, store=case.manager.store)
    return manager


def _outcome(function: Callable[[], Any], spare: int) -> Any:
    try:
        return _with_spare_stack(spare, function)
    except RecursionError:
        return RecursionError


#: Levels of the recursion limit left to the caller: some too few for the store's driver
#: itself, some enough for it but fewer than decoding the deepest document takes.
SPARE_LEVELS = range(10, 130, 8)


@pytest.mark.django_db(transaction=True)  # a statement failing in a test's atomic breaks it
@pytest.mark.parametrize("operation", ["get_token_data", "consume_token"])
def test_a_payloads_nesting_never_burns_a_token(case: Case, operation: str) -> None:
    manager = _deepest(case)
    deep, flat = _nested(manager.max_payload_depth), {"leaf": True}
    read = getattr(manager, operation)
    served = 0
    for spare in SPARE_LEVELS:
        flat_token, deep_token = manager.create_token(flat), manager.create_token(deep)
        if _outcome(lambda t=flat_token: read(t), spare) is RecursionError:
            continue  # the caller's stack is too full for the store itself, whatever the payload
        # Where a flat payload is served, so is the deepest allowed: its nesting is never the
        # reason a peek or a consume fails (nor, then, the reason a token is lost).
        assert _outcome(lambda t=deep_token: read(t), spare) == deep
        served += 1
    assert served  # some levels leave the driver enough and decoding too little
    with pytest.raises(InvalidPayload, match="nested more than"):
        manager.create_token(_nested(manager.max_payload_depth + 1))


@pytest.mark.django_db(transaction=True)
def test_a_payloads_nesting_never_refuses_a_creation_a_flat_one_passes(case: Case) -> None:
    manager = _deepest(case)
    deep = _nested(manager.max_payload_depth)
    for spare in SPARE_LEVELS:
        if _outcome(lambda: manager.create_token({"leaf": True}), spare) is RecursionError:
            continue
        token = _outcome(lambda: manager.create_token(deep), spare)
        assert manager.consume_token(token) == deep
    with pytest.raises(InvalidPayload):  # far too deep: refused before any I/O
        _with_spare_stack(60, lambda: manager.create_token(_nested(1000)))


def test_an_int_longer_than_pythons_default_limit_is_refused_at_creation(case: Case) -> None:
    longest = 10**MAX_INT_DIGITS - 1  # 4300 digits: read back by any process
    token = case.manager.create_token({"n": longest, "s": "9" * 5000})
    assert case.manager.consume_token(token) == {"n": longest, "s": "9" * 5000}
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # this process could write it; one with the default could not
    try:
        with case.no_io(), pytest.raises(InvalidPayload, match="more than 4300 digits"):
            case.manager.create_token({"n": [-(10**MAX_INT_DIGITS)]})
    finally:
        sys.set_int_max_str_digits(previous)


# -- concurrency: exactly one winner per token ---------------------------------------------

RACE_TOKENS = 200
RACE_THREADS = 16
RACE_PROCESSES = 4


def _race_threads(manager: JsonActionTokenManager, tokens: list[str]) -> list[int]:
    wins, errors = consume_race(manager.consume_token, tokens, RACE_THREADS)
    assert not errors, errors
    return wins


@pytest.mark.django_db(transaction=True)
def test_consume_is_atomic_under_16_racing_threads(case: Case) -> None:
    tokens = [case.manager.create_token({"i": i}) for i in range(RACE_TOKENS)]
    wins = _race_threads(case.manager, tokens)
    assert wins == [1] * RACE_TOKENS


def _race_process(
    manager: JsonActionTokenManager,
    tokens: list[str],
    barrier: Any,
    results: Any,
) -> None:
    # A forked child must not reuse the parent's sockets: drop inherited clients first.
    keel_redis.reset_clients()
    won: list[int] = []
    try:
        for i, token in enumerate(tokens):
            barrier.wait(timeout=60)
            if manager.consume_token(token) is not None:
                won.append(i)
    except BaseException as exc:
        results.put(("error", repr(exc)))
        raise
    finally:
        connections.close_all()
    results.put(("ok", won))


@pytest.mark.django_db(transaction=True)
def test_consume_is_atomic_under_4_racing_processes(case: Case) -> None:
    tokens = [case.manager.create_token({"i": i}) for i in range(RACE_TOKENS)]
    # Children get their own database connections and Redis sockets, never the parent's.
    connections.close_all()
    keel_redis.reset_clients()
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(RACE_PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_race_process, args=(case.manager, tokens, barrier, results))
        for _ in range(RACE_PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert [status for status, _ in outcomes] == ["ok"] * RACE_PROCESSES, outcomes
    wins = [0] * RACE_TOKENS
    for _, won in outcomes:
        for i in won:
            wins[i] += 1
    assert wins == [1] * RACE_TOKENS
    assert all(process.exitcode == 0 for process in processes)


def test_ttl_is_stored_as_a_lifetime_not_a_date_far_away(case: Case) -> None:
    token = case.manager.create_token({"a": 1}, ttl_hours=0.5)
    digest = case.manager.digest(token)
    if case.kind == "redis":
        ttl_ms = keel_redis.get_redis().pttl(
            f"{django_settings.TEST_KEY_PREFIX}:token:{case.manager.prefix}:{digest}"
        )
        assert 1_799_000 < ttl_ms <= 1_800_000
    else:
        row = ActionToken.objects.get(digest=digest)
        lifetime = (row.expires_at - row.created_at).total_seconds()
        assert math.isclose(lifetime, 1800, abs_tol=0.001)


# -- state binding: a token dies when what it protects changes --------------------------------

ACCOUNT_EMAIL = StateBinding(TokenAccount, ["email"], payload_key="account")


@pytest.fixture
def account(db: None) -> TokenAccount:
    """The account whose ``email`` the tokens bound by ``ACCOUNT_EMAIL`` protect."""
    return TokenAccount.objects.create(email="ada@example.com")


def test_a_bound_token_dies_when_the_bound_fields_change(case: Case, account: TokenAccount) -> None:
    manager = case.bound(ACCOUNT_EMAIL)
    peeked = manager.create_token({"account": account.pk})
    consumed = manager.create_token({"account": account.pk})
    assert manager.get_token_data(peeked) == {"account": account.pk}
    account.email_confirmed = True  # not a bound field: the tokens live on
    account.save()
    assert manager.get_token_data(peeked) == {"account": account.pk}
    account.email = "eve@example.com"
    account.save()
    assert manager.get_token_data(peeked) is None
    assert manager.consume_token(consumed) is None
    assert manager.consume_token(consumed) is None  # the refused consume used it up
    fresh = manager.create_token({"account": account.pk})
    assert manager.consume_token(fresh) == {"account": account.pk}


@pytest.mark.parametrize("seen_by", ["peek", "consume", "apeek"])
def test_a_bound_token_stays_dead_when_the_state_changes_back(
    case: Case, account: TokenAccount, seen_by: str
) -> None:
    manager = case.bound(ACCOUNT_EMAIL)
    token = manager.create_token({"account": account.pk, "new": "x@example.com"})
    TokenAccount.objects.filter(pk=account.pk).update(email="eve@example.com")
    if seen_by == "peek":
        assert manager.get_token_data(token) is None
    elif seen_by == "consume":
        assert manager.consume_token(token) is None
    else:
        assert async_to_sync(manager.aget_token_data)(token) is None
    TokenAccount.objects.filter(pk=account.pk).update(email="ada@example.com")
    assert manager.get_token_data(token) is None
    assert manager.consume_token(token) is None
    assert manager.delete_token(token) is False  # deleted when it was found changed


@pytest.mark.parametrize("change", ["password", "last_login", "email"])
def test_a_user_bound_token_dies_with_a_new_password_login_or_email(
    case: Case, change: str
) -> None:
    user = get_user_model().objects.create_user("ada", "ada@example.com", "first password")
    manager = case.bound(UserStateBinding())
    token = manager.create_token({"user_id": user.pk})
    assert manager.get_token_data(token) == {"user_id": user.pk}
    if change == "password":
        user.set_password("second password")
    elif change == "last_login":
        user.last_login = timezone.now()
    else:
        user.email = "ada@example.org"
    user.save()
    assert manager.get_token_data(token) is None
    assert manager.consume_token(token) is None


def test_a_bound_peek_reads_the_instance_with_one_select(case: Case, account: TokenAccount) -> None:
    manager = case.bound(ACCOUNT_EMAIL)
    token = manager.create_token({"account": account.pk})
    with CaptureQueriesContext(connections["default"]) as queries:
        assert manager.get_token_data(token) == {"account": account.pk}
    reads = [q["sql"] for q in queries if "tokenaccount" in q["sql"].lower()]
    assert len(reads) == 1, reads


def test_a_bound_token_needs_its_instance(case: Case, account: TokenAccount) -> None:
    manager = case.bound(ACCOUNT_EMAIL)
    with case.no_io(), pytest.raises(InvalidPayload, match="lacks"):
        manager.create_token({"user": account.pk})
    with pytest.raises(InvalidPayload, match=r"No testapp\.TokenAccount has pk=0"):
        manager.create_token({"account": 0})
    token = manager.create_token({"account": account.pk})
    account.delete()
    assert manager.get_token_data(token) is None


def test_bound_and_unbound_documents_never_pass_for_each_other(
    case: Case, account: TokenAccount
) -> None:
    bound = case.bound(ACCOUNT_EMAIL)
    unbound = case.manager
    from_bound = bound.create_token({"account": account.pk})
    from_unbound = unbound.create_token({"account": account.pk})
    assert unbound.get_token_data(from_bound) is None
    assert bound.get_token_data(from_unbound) is None


def test_a_bound_token_survives_a_key_rotation(case: Case, account: TokenAccount) -> None:
    manager = case.bound(ACCOUNT_EMAIL)
    token = manager.create_token({"account": account.pk})
    old_key = django_settings.SECRET_KEY
    with override_settings(SECRET_KEY="the-new-secret", SECRET_KEY_FALLBACKS=[old_key]):
        assert manager.consume_token(token) == {"account": account.pk}


def test_async_twins_check_the_state_too(case: Case, account: TokenAccount) -> None:
    manager = case.bound(ACCOUNT_EMAIL)

    async def create() -> str:
        return await manager.acreate_token({"account": account.pk})

    kept, changed = async_to_sync(create)(), async_to_sync(create)()
    assert async_to_sync(manager.aget_token_data)(kept) == {"account": account.pk}
    assert async_to_sync(manager.aconsume_token)(kept) == {"account": account.pk}
    TokenAccount.objects.filter(pk=account.pk).update(email="eve@example.com")
    assert async_to_sync(manager.aconsume_token)(changed) is None


# -- one-time codes: per-subject limits on attempts and on codes issued -----------------------


class Codes(OneTimeCodeManager):
    max_attempts = 5
    max_codes = 3


def codes(case: Case, cls: type[OneTimeCodeManager] = Codes) -> OneTimeCodeManager:
    return cls(case.manager.prefix, store=case.manager.get_store())


def wrong(code: str) -> str:
    """Another code of the same length."""
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


def test_a_code_is_numeric_and_verifies_once_with_its_payload(case: Case) -> None:
    manager = codes(case)
    code = manager.issue_code("ada@example.com", {"user_id": 7})
    assert len(code) == 6 and code.isdigit()
    assert manager.verify_code("ada@example.com", code) == {"user_id": 7}
    assert manager.verify_code("ada@example.com", code) is None


def test_a_code_belongs_to_its_subject_exactly(case: Case) -> None:
    manager = codes(case)
    code = manager.issue_code("josé")
    assert manager.verify_code("JOSE", code) is None
    assert manager.verify_code("jose", code) is None
    assert manager.verify_code("josé", code) == {}


def test_a_new_code_replaces_the_previous_one(case: Case) -> None:
    manager = codes(case)
    first = manager.issue_code(42)
    second = manager.issue_code(42)
    if first != second:  # one chance in a million that they are equal
        assert manager.verify_code(42, first) is None
    assert manager.verify_code(42, second) == {}


def test_guessing_stops_after_max_attempts_even_with_the_right_code(case: Case) -> None:
    manager = codes(case)
    code = manager.issue_code("ada")
    for _ in range(Codes.max_attempts):
        assert manager.verify_code("ada", wrong(code)) is None
    assert manager.verify_code("ada", code) is None
    fresh = manager.issue_code("ada")  # a new code starts with its own attempts
    assert manager.verify_code("ada", fresh) == {}
    # A brute force over many codes, the right one among them, finds nothing either.
    code = manager.issue_code("bob")
    candidates = [str(n).zfill(6) for n in range(40)] + [code]
    assert all(manager.verify_code("bob", guess) is None for guess in candidates[5:])


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_are_all_counted(case: Case) -> None:
    manager = codes(case)
    code = manager.issue_code("ada")
    barrier = threading.Barrier(RACE_THREADS)
    answers: list[Any] = []

    def guess() -> None:
        try:
            barrier.wait()
            answers.append(manager.verify_code("ada", wrong(code)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess) for _ in range(RACE_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [None] * RACE_THREADS
    assert manager.verify_code("ada", code) is None  # 16 attempts counted: locked


class GuessesBeforePut:
    """A store through which ``guesses()`` runs just before the next ``put``: a resend that
    a guesser's requests overtake between its bookkeeping and its write."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.guesses: Callable[[], None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def put(self, entry: Any) -> bool:
        guesses, self.guesses = self.guesses, None
        if guesses is not None:
            guesses()
        return bool(self.store.put(entry))


class Resent(Codes):
    max_codes = 10


def test_a_resend_gives_the_previous_code_no_fresh_tries(case: Case) -> None:
    store = GuessesBeforePut(case.manager.get_store())
    manager = Resent(case.manager.prefix, store=store)  # type: ignore[arg-type]
    first = manager.issue_code("ada", {"n": 1})
    for _ in range(Codes.max_attempts):
        assert manager.verify_code("ada", wrong(first)) is None
    answers: list[Any] = []

    def guesses() -> None:  # while the resend runs, the first code is still live
        answers.extend(manager.verify_code("ada", wrong(first)) for _ in range(3))
        answers.append(manager.verify_code("ada", first))

    store.guesses = guesses
    second = manager.issue_code("ada", {"n": 2})
    assert answers == [None] * 4  # the right code on its 9th try: refused
    # The guesses counted while the resend ran are counted against the new code as well:
    # it has one try left, and no more.
    assert manager.verify_code("ada", second) == {"n": 2}
    assert manager.verify_code("ada", first) is None
    third = manager.issue_code("ada", {"n": 3})
    for _ in range(Codes.max_attempts):
        assert manager.verify_code("ada", wrong(third)) is None
    assert manager.verify_code("ada", third) is None


def _resend_among_guesses(manager: OneTimeCodeManager, subject: str, code: str) -> list[Any]:
    """What 4 threads guessing ``code`` 10 times each got while a fifth issued a new code."""
    barrier = threading.Barrier(5)
    answers: list[Any] = []

    def guess() -> None:
        try:
            barrier.wait()
            answers.extend(manager.verify_code(subject, code) for _ in range(10))
        finally:
            connections.close_all()

    def resend() -> None:
        try:
            barrier.wait()
            manager.issue_code(subject, {"round": "new"})
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess) for _ in range(4)]
    threads.append(threading.Thread(target=resend))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.django_db(transaction=True)
def test_a_resend_racing_guesses_never_gives_an_exhausted_code_a_try(case: Case) -> None:
    manager = codes(case, type("Exhausted", (Unlimited,), {"max_attempts": 5}))
    accepted, rounds = 0, 20 if case.kind == "redis" else 5
    for number in range(rounds):
        subject = f"ada-{number}"
        code = manager.issue_code(subject, {"round": number})
        for _ in range(manager.max_attempts):
            manager.verify_code(subject, wrong(code))
        accepted += {"round": number} in _resend_among_guesses(manager, subject, code)
    assert accepted == 0


def test_a_right_code_resets_the_attempts(case: Case) -> None:
    manager = codes(case)
    code = manager.issue_code("ada")
    for _ in range(Codes.max_attempts - 1):
        manager.verify_code("ada", wrong(code))
    assert manager.verify_code("ada", code) == {}
    code = manager.issue_code("ada")
    for _ in range(Codes.max_attempts - 1):
        manager.verify_code("ada", wrong(code))
    assert manager.verify_code("ada", code) == {}


def test_no_more_than_max_codes_per_window(case: Case) -> None:
    # The window is measured on the store's clock (Redis', or the database's, shared by every
    # app server): Redis' is waited for, the database's moves with keel's clock.
    class Windowed(Codes):
        window_seconds = 3

    manager = codes(case, Windowed)
    manager.issue_code("ada")
    opened = keel_clock.monotonic()  # the window opened during that first issue, not after
    for _ in range(Windowed.max_codes - 1):
        manager.issue_code("ada")
    with pytest.raises(TooManyCodes, match=r"3 .* codes were already issued"):
        manager.issue_code("ada")
    assert manager.issue_code("bob")  # per subject
    case.wait(max(0.0, opened + Windowed.window_seconds + 0.1 - keel_clock.monotonic()))
    assert manager.verify_code("ada", manager.issue_code("ada")) == {}


class Unlimited(OneTimeCodeManager):
    max_attempts = 1000
    max_codes = 1000


ISSUE_THREADS = 8


def _issue_rounds(case: Case) -> int:
    # An unlucky interleaving on Redis shows about once in 20 rounds when the creates are
    # not serialised; the database store serialises them on a lock row, and its rounds are
    # slow (SQLite waits on its file lock): fewer prove it.
    return 100 if case.kind == "redis" else 8


def _issued_in_parallel(issue: Callable[[str], str], subject: str) -> list[str]:
    """What ``ISSUE_THREADS`` threads released at once got from ``issue(subject)``."""
    issued, errors = at_once(lambda _: issue(subject), ISSUE_THREADS)
    assert not errors, errors
    assert len(issued) == ISSUE_THREADS
    return issued


@pytest.mark.django_db(transaction=True)
def test_codes_issued_in_parallel_leave_at_most_one_live_code(case: Case) -> None:
    manager = codes(case, Unlimited)
    live, rounds = [], _issue_rounds(case)
    for number in range(rounds):
        subject = f"ada-{number}"
        issued = set(_issued_in_parallel(manager.issue_code, subject))
        live.append(sum(manager.verify_code(subject, code) == {} for code in issued))
    # Whatever the interleaving, the subject ends with exactly one live code.
    assert live == [1] * rounds


@pytest.mark.django_db(transaction=True)
def test_tokens_created_in_parallel_for_a_subject_leave_one_live_token(case: Case) -> None:
    def create(subject: str) -> str:
        return case.manager.create_token({"s": subject}, subject=subject)

    live, rounds = [], _issue_rounds(case)
    for number in range(rounds):
        tokens = _issued_in_parallel(create, f"ada-{number}")
        live.append(sum(case.manager.consume_token(token) is not None for token in tokens))
    assert live == [1] * rounds


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("worker", [OLD_WORKER, NEW_WORKER], ids=["old-key", "new-key"])
def test_revokes_racing_creates_never_fail_and_a_last_revoke_leaves_none(
    case: Case, worker: dict[str, Any]
) -> None:
    turns = itertools.count()  # one call in four revokes, the others create

    def create_or_revoke(subject: str) -> str:
        if next(turns) % 4 == 0:
            case.manager.revoke_subject(subject)
            return ""
        return case.manager.create_token({"s": subject}, subject=subject)

    for number in range(_issue_rounds(case) // 2):
        subject = f"ada-{number}"
        with override_settings(**worker):  # settings are global: set for all threads at once
            tokens = [t for t in _issued_in_parallel(create_or_revoke, subject) if t]
        with override_settings(**NEW_WORKER):
            assert sum(case.manager.get_token_data(t) is not None for t in tokens) <= 1
        with override_settings(**OLD_WORKER):
            case.manager.revoke_subject(subject)  # an old worker's revoke finds them all
        with override_settings(**NEW_WORKER):
            assert [t for t in tokens if case.manager.get_token_data(t) is not None] == []


def test_the_codes_window_rolls_so_no_boundary_doubles_the_limit(case: Case) -> None:
    # Measured on the store's clock, as above.
    class Rolling(Codes):
        max_codes = 2
        window_seconds = 2

    manager = codes(case, Rolling)
    manager.issue_code("ada")
    first_done = keel_clock.monotonic()  # the first code was issued before this instant
    case.wait(1.2)
    second_started = keel_clock.monotonic()  # ...and the second after this one
    manager.issue_code("ada")
    with pytest.raises(TooManyCodes, match="within the last 2 s"):
        manager.issue_code("ada")
    # Just past the first code's window (a fixed window would have started afresh here):
    # its place is free again, the second code's is not, so one code and no more.
    case.wait(max(0.0, first_done + Rolling.window_seconds + 0.15 - keel_clock.monotonic()))
    third = manager.issue_code("ada")
    with pytest.raises(TooManyCodes):
        manager.issue_code("ada")
    assert keel_clock.monotonic() < second_started + Rolling.window_seconds  # in its window
    assert manager.verify_code("ada", third) == {}
    case.wait(max(0.0, second_started + Rolling.window_seconds + 0.15 - keel_clock.monotonic()))
    assert manager.verify_code("ada", manager.issue_code("ada")) == {}
    with pytest.raises(TooManyCodes):  # the third code still counts
        manager.issue_code("ada")


@pytest.mark.django_db(transaction=True)
def test_codes_issued_in_parallel_never_exceed_the_window(case: Case) -> None:
    class Limited(Unlimited):
        max_codes = 3

    manager = codes(case, Limited)
    outcomes: list[str] = []

    def issue(subject: str) -> str:
        try:
            manager.issue_code(subject)
        except TooManyCodes:
            outcomes.append("refused")
            return "refused"
        outcomes.append("issued")
        return "issued"

    _issued_in_parallel(issue, "ada")
    assert sorted(outcomes) == ["issued"] * 3 + ["refused"] * (ISSUE_THREADS - 3)


def test_a_code_expires(case: Case) -> None:
    manager = codes(case)
    code = manager.issue_code("ada", ttl_seconds=1)
    case.wait(1.2)
    assert manager.verify_code("ada", code) is None


def test_malformed_codes_cost_no_attempt_and_no_io(case: Case) -> None:
    manager = codes(case)
    code = manager.issue_code("ada")
    with case.no_io():
        for bad in ("", "12345", "1234567", "12345a", "١٢٣٤٥٦", " 12345"):
            assert manager.verify_code("ada", bad) is None
    assert manager.verify_code("ada", code) == {}


def test_a_code_survives_a_key_rotation(case: Case) -> None:
    manager = codes(case)
    code = manager.issue_code("ada", {"n": 1})
    old_key = django_settings.SECRET_KEY
    with override_settings(SECRET_KEY="the-new-secret", SECRET_KEY_FALLBACKS=[old_key]):
        assert manager.verify_code("ada", code) == {"n": 1}


def test_codes_are_never_stored_in_clear(case: Case) -> None:
    manager = codes(case)
    code = manager.issue_code("ada@example.com", {"n": 1})
    stored = "\n".join(case.dump())
    assert "ada@example.com" not in stored
    assert f":{code}" not in stored and f" {code}" not in stored


def test_async_codes_keep_the_same_limits(case: Case) -> None:
    manager = codes(case)

    async def scenario() -> list[Any]:
        code = await manager.aissue_code("ada", {"n": 1})
        right = await manager.averify_code("ada", code)
        code = await manager.aissue_code("ada")
        for _ in range(Codes.max_attempts):
            await manager.averify_code("ada", wrong(code))
        locked = await manager.averify_code("ada", code)
        await manager.aissue_code("ada")
        try:
            await manager.aissue_code("ada")
        except TooManyCodes:
            return [right, locked, "too many"]
        return [right, locked, "issued"]

    assert async_to_sync(scenario)() == [{"n": 1}, None, "too many"]
