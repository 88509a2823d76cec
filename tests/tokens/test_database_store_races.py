"""The database store under contention: what the managers promise when callers race.

Many threads (and, for a key rotation, processes) race creates, revokes, consumes and peeks
of one subject's tokens, and issues and verifications of one subject's codes, round after
round, on a subject new to each round (its lock row does not exist yet). In keel's own
transaction no database error may reach the caller; inside the caller's
``transaction.atomic()`` only ``TokenStoreBusy`` may (and ``TokenError`` for a code check,
which is refused there). At the end of each round the subject has at most one live token or
code, and each payload was returned to one caller only.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test import override_settings
from django.utils import timezone

from keel.models import ActionCounter, ActionToken
from keel.tokens import (
    DatabaseTokenStore,
    JsonActionTokenDatabaseManager,
    OneTimeCodeManager,
    TokenError,
    TokenStoreBusy,
)
from tests.conftest import in_threads

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 12
ROUNDS = 5

OLD_KEY = "the-old-secret-the-old-secret-the-old-secret-"
NEW_KEY = "the-new-secret-the-new-secret-the-new-secret-"

ISOLATION = {
    ("postgresql", "repeatable-read"): "SET SESSION CHARACTERISTICS AS TRANSACTION "
    "ISOLATION LEVEL REPEATABLE READ",
    ("postgresql", "serializable"): "SET SESSION CHARACTERISTICS AS TRANSACTION "
    "ISOLATION LEVEL SERIALIZABLE",
    ("mysql", "repeatable-read"): "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    ("mysql", "serializable"): "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
}
ISOLATIONS = ["default", "repeatable-read", "serializable"]
MODES = ["autocommit", "atomic"]


def _setup_isolation(isolation: str) -> None:
    if isolation == "default":
        return
    key = (connection.vendor, isolation)
    if key not in ISOLATION:
        pytest.skip(f"{connection.vendor} has no {isolation} to set")


class Outcome:
    """What the threads of a round did: the payloads each token gave, the exceptions raised."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wins: dict[str, int] = {}
        self.errors: list[BaseException] = []
        self.commit_errors: list[BaseException] = []

    def won(self, tokens: list[str]) -> None:
        with self.lock:
            for token in tokens:
                self.wins[token] = self.wins.get(token, 0) + 1

    def twice(self) -> dict[str, int]:
        return {token: n for token, n in self.wins.items() if n > 1}


#: A job runs in a thread; it returns the tokens (or codes) it won, counted only once its
#: transaction committed (a rolled-back consume gives the token back).
Job = Callable[[], list[str]]


class _Raised(Exception):
    def __init__(self, error: BaseException, job: Job) -> None:
        super().__init__(error)
        self.error = error
        error.add_note(f"raised by {job.__name__}")


def _call(job: Job) -> list[str]:
    try:
        return job()
    except Exception as exc:
        raise _Raised(exc, job) from exc


def _race(jobs: list[Job], *, mode: str, isolation: str, outcome: Outcome) -> None:
    barrier = threading.Barrier(len(jobs))

    def run(job: Job) -> None:
        try:
            if isolation != "default":
                with connection.cursor() as cursor:
                    cursor.execute(ISOLATION[(connection.vendor, isolation)])
            barrier.wait(timeout=60)
            if mode == "atomic" and not getattr(job, "cron", False):
                with transaction.atomic():
                    won = _call(job)
            else:
                won = _call(job)
            outcome.won(won)
        except _Raised as raised:
            outcome.errors.append(raised.error)
        except BaseException as exc:
            # Raised by the caller's own COMMIT, not by a manager: not keel's to answer.
            outcome.commit_errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + HANG_SECONDS
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = [thread for thread in threads if thread.is_alive()]
    if hung:
        still = f"{len(hung)} calls still running after {HANG_SECONDS} s"
        outcome.errors.append(TimeoutError(still))
        _end_other_connections()
        for thread in hung:
            thread.join(timeout=30)


#: A call that has not returned after this long is hung (the rounds take a few seconds).
HANG_SECONDS = 60


def _end_other_connections() -> None:
    """End the connections of hung calls, so that they raise and the test can finish."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        elif connection.vendor == "mysql":
            cursor.execute(
                "SELECT id FROM information_schema.processlist"
                " WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            )
            for (pid,) in cursor.fetchall():
                cursor.execute(f"KILL {int(pid)}")


def _cause(error: BaseException) -> BaseException | None:
    """The first error in ``error``'s chain: what the database said before anything else."""
    cause = error.__cause__ or error.__context__
    while cause is not None and (cause.__cause__ or cause.__context__) is not None:
        cause = cause.__cause__ or cause.__context__
    return cause


def _raw(errors: list[BaseException], mode: str, *allowed: type[BaseException]) -> list[str]:
    """The errors that break the promise: anything in autocommit, and inside the caller's
    transaction anything but ``TokenStoreBusy`` (and what ``allowed`` names)."""
    tolerated = (TokenStoreBusy, *allowed) if mode == "atomic" else ()
    seen = collections.Counter(
        re.sub(r"\b[0-9a-f]{12,}\b", "<digest>", f"{error!r}")
        + f" {' '.join(getattr(error, '__notes__', []))} (after {_cause(error)!r})"
        for error in errors
        if not isinstance(error, tolerated)
    )
    return [f"{count} x {error}" for error, count in seen.most_common()]


# -- tokens: create vs revoke vs consume vs peek for one subject -------------------------------


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("mode", MODES)
def test_tokens_of_one_subject_under_every_operation_at_once(mode: str, isolation: str) -> None:
    _setup_isolation(isolation)
    manager = JsonActionTokenDatabaseManager(prefix="attack:mixed", store=DatabaseTokenStore())
    outcome = Outcome()
    too_many: list[tuple[int, int]] = []
    rng = random.Random(1913)
    for number in range(ROUNDS):
        subject = f"mixed-{mode}-{isolation}-{number}"
        first = manager.create_token({"round": number, "first": True}, subject=subject)
        created: list[str] = [first]

        def create(subject: str = subject, created: list[str] = created) -> list[str]:
            token = manager.create_token({"n": rng.random()}, subject=subject)
            created.append(token)
            return []

        def revoke(subject: str = subject) -> list[str]:
            manager.revoke_subject(subject)
            return []

        def consume(created: list[str] = created) -> list[str]:
            won = []
            for token in list(created):
                if manager.consume_token(token) is not None:
                    won.append(token)
            return won

        def peek(created: list[str] = created) -> list[str]:
            for token in list(created):
                manager.get_token_data(token)
            return []

        def create_then_consume(subject: str = subject, created: list[str] = created) -> list[str]:
            token = manager.create_token({"n": 2}, subject=subject)
            created.append(token)
            return consume(created)

        def peek_then_revoke(subject: str = subject, created: list[str] = created) -> list[str]:
            peek(created)
            return revoke(subject)

        kinds: list[Job] = [
            create,
            create,
            create,
            revoke,
            consume,
            consume,
            peek,
            create_then_consume,
            peek_then_revoke,
            create,
            consume,
            peek,
        ]
        _race(kinds[:THREADS], mode=mode, isolation=isolation, outcome=outcome)
        live = manager.revoke_subject(subject)
        if live > 1:
            too_many.append((number, live))
    assert _raw(outcome.errors, mode) == []
    assert outcome.twice() == {}
    assert too_many == []


# -- tokens: a rolling key rotation, old-key workers and new-key workers at once ---------------

ROTATION_PROCESSES = 4
ROTATION_ROUNDS = 8


def _rotation_worker(
    index: int, mode: str, barrier: Any, results: Any, subjects: list[str]
) -> None:
    # Two workers already run the new key (the old one kept as a fallback), two still run
    # only the old one: a rolling deploy.
    settings = (
        {"SECRET_KEY": NEW_KEY, "SECRET_KEY_FALLBACKS": [OLD_KEY]}
        if index % 2 == 0
        else {"SECRET_KEY": OLD_KEY, "SECRET_KEY_FALLBACKS": []}
    )
    errors: list[str] = []
    with override_settings(**settings):
        manager = JsonActionTokenDatabaseManager(prefix="attack:rotation")
        for number, subject in enumerate(subjects):
            try:
                barrier.wait(timeout=60)
            except BaseException as exc:
                errors.append(repr(exc))
                break
            try:
                with transaction.atomic() if mode == "atomic" else _nothing():
                    if index == 3 and number % 3 == 0:
                        manager.revoke_subject(subject)
                    else:
                        manager.create_token({"by": index}, subject=subject)
            except TokenStoreBusy as exc:
                if mode != "atomic":
                    errors.append(repr(exc))
            except BaseException as exc:
                errors.append(repr(exc))
    connections.close_all()
    results.put(errors)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@pytest.mark.parametrize("mode", MODES)
def test_creates_across_a_key_rotation_leave_one_live_token(mode: str) -> None:
    subjects = [f"rotation-{mode}-{n}" for n in range(ROTATION_ROUNDS)]
    connections.close_all()
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(ROTATION_PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_rotation_worker, args=(i, mode, barrier, results, subjects))
        for i in range(ROTATION_PROCESSES)
    ]
    for process in processes:
        process.start()
    errors = [error for _ in processes for error in results.get(timeout=300)]
    for process in processes:
        process.join(timeout=30)
    too_many = []
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        manager = JsonActionTokenDatabaseManager(prefix="attack:rotation")
        for subject in subjects:
            live = manager.revoke_subject(subject)
            if live > 1:
                too_many.append((subject, live))
    assert errors == []
    assert too_many == []


# -- one-time codes: issue vs verify (wrong, right) vs resend ----------------------------------


class ManyCodes(OneTimeCodeManager):
    """Limits high enough that only the race decides what a round leaves."""

    max_codes: ClassVar[int] = 10_000
    max_attempts: ClassVar[int] = 10_000


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("mode", MODES)
def test_codes_of_one_subject_under_issue_verify_and_resend(mode: str, isolation: str) -> None:
    _setup_isolation(isolation)
    codes = ManyCodes("attack:codes")
    outcome = Outcome()
    too_many: list[tuple[int, int]] = []
    for number in range(ROUNDS):
        subject = f"codes-{mode}-{isolation}-{number}"
        issued: list[str] = [codes.issue_code(subject, {"round": number})]

        def issue(subject: str = subject, issued: list[str] = issued) -> list[str]:
            issued.append(codes.issue_code(subject, {"n": 1}))
            return []

        def verify_right(subject: str = subject, issued: list[str] = issued) -> list[str]:
            return [
                f"{subject}:{code}" for code in list(issued) if codes.verify_code(subject, code)
            ]

        def verify_wrong(subject: str = subject, issued: list[str] = issued) -> list[str]:
            wrong = str((int(issued[0]) + 1) % 10**codes.digits).zfill(codes.digits)
            if wrong not in issued:
                codes.verify_code(subject, wrong)
            return []

        jobs: list[Job] = [issue, issue, issue, verify_right, verify_right, verify_wrong] * 2
        _race(jobs[:THREADS], mode=mode, isolation=isolation, outcome=outcome)
        if any(isinstance(error, TimeoutError) for error in outcome.errors):
            break
        live = sum(1 for code in issued if codes.verify_code(subject, code) is not None)
        if live > 1:
            too_many.append((number, live))
    # Inside the caller's transaction a code check is refused (TokenError), by design.
    raw = _raw(outcome.errors, mode, TokenError)
    assert raw == []
    assert outcome.twice() == {}
    assert too_many == []


# -- keel_purge_tokens racing creates ----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_purge_racing_creates_and_issues(mode: str) -> None:
    manager = JsonActionTokenDatabaseManager(prefix="attack:purge", store=DatabaseTokenStore())
    codes = ManyCodes("attack:purge-codes")
    outcome = Outcome()
    too_many: list[tuple[int, int]] = []
    counter = itertools.count()
    for number in range(ROUNDS):
        subject = f"purge-{mode}-{number}"
        # A backlog of expired rows and counters, some of this round's subject.
        for i in range(20):
            manager.create_token({"old": i}, subject=subject if i % 5 == 0 else f"gone-{i}")
            codes.issue_code(f"gone-{number}-{i}")
        past = timezone.now() - timedelta(hours=1)
        ActionToken.objects.update(expires_at=past)
        ActionCounter.objects.update(expires_at=past)

        def purge() -> list[str]:
            if next(counter) % 2:
                call_command("keel_purge_tokens", batch_size=3, verbosity=0)
            else:
                DatabaseTokenStore().purge_expired(batch_size=2)
                DatabaseTokenStore().purge_expired_counters(batch_size=2)
            return []

        purge.cron = True  # type: ignore[attr-defined]  # its own transactions, never the caller's

        def create(subject: str = subject) -> list[str]:
            manager.create_token({"n": 1}, subject=subject)
            return []

        def issue(subject: str = subject) -> list[str]:
            codes.issue_code(subject)
            return []

        jobs: list[Job] = [purge, create, create, issue] * 3
        _race(jobs[:THREADS], mode=mode, isolation="default", outcome=outcome)
        live = manager.revoke_subject(subject)
        if live > 1:
            too_many.append((number, live))
    assert _raw(outcome.errors, mode) == []
    assert too_many == []


# -- one read, then a write, inside the caller's transaction ----------------------------------


def _read_then_write(
    first: Callable[[], object],
    then: Callable[[], object],
    meanwhile: Callable[[], object],
    before: Callable[[], object] = lambda: None,
) -> list[str]:
    """In one thread's ``transaction.atomic()``: ``first``, then (once another thread has run
    ``meanwhile`` and committed) ``then``; the errors that reached the caller, and any that
    ``meanwhile`` raised."""
    did_first, did_meanwhile = threading.Event(), threading.Event()

    def caller() -> BaseException | None:
        try:
            before()
            with transaction.atomic():
                first()
                did_first.set()
                # SQLite: the other writer waits for this reader; go on after a second.
                did_meanwhile.wait(timeout=1)
                then()
        except _Raised as raised:
            return raised.error  # what the manager raised, unwrapped
        finally:
            did_first.set()
        return None

    def other() -> None:
        try:
            did_first.wait(timeout=30)
            meanwhile()
        finally:
            did_meanwhile.set()

    results, errors = in_threads(lambda i, _: (caller, other)[i](), 2)
    return _raw([*errors, *(error for error in results if error is not None)], "atomic")


def _job(function: Callable[[], object], name: str) -> Job:
    def job() -> list[str]:
        function()
        return []

    job.__name__ = name
    return job


@pytest.mark.parametrize("then", ["revoke", "create", "create-plain", "delete", "issue"])
def test_a_write_after_a_read_in_the_callers_transaction_is_busy_or_done(then: str) -> None:
    manager = JsonActionTokenDatabaseManager(prefix="attack:rw", store=DatabaseTokenStore())
    codes = ManyCodes("attack:rw-codes")
    token = manager.create_token({"a": 1}, subject="ada")
    other = manager.create_token({"b": 2})
    writes = {
        "revoke": lambda: manager.revoke_subject("ada"),
        "create": lambda: manager.create_token({"c": 3}, subject="ada"),
        "create-plain": lambda: manager.create_token({"c": 4}),
        "delete": lambda: manager.delete_token(token),
        "issue": lambda: codes.issue_code("ada"),
    }
    errors = _read_then_write(
        _job(lambda: manager.get_token_data(token), "peek"),
        lambda: _call(_job(writes[then], then)),
        lambda: manager.consume_token(other),
    )
    assert errors == []


@pytest.mark.parametrize("isolation", ["repeatable-read", "serializable"])
def test_a_lost_consume_leaves_the_callers_transaction_usable(isolation: str) -> None:
    _setup_isolation(isolation)
    manager = JsonActionTokenDatabaseManager(prefix="attack:lost", store=DatabaseTokenStore())
    token = manager.create_token({"a": 1})
    other = manager.create_token({"b": 2})
    answers: list[object] = []

    def set_isolation() -> None:
        with connection.cursor() as cursor:
            cursor.execute(ISOLATION[(connection.vendor, isolation)])

    def first() -> None:
        answers.append(manager.get_token_data(token))  # the snapshot is taken here

    def then() -> None:
        # The token was consumed meanwhile: this consume loses, and is answered None; the
        # caller's transaction goes on (a peek of another token, its own COMMIT).
        answers.append(_call(_job(lambda: answers.append(manager.consume_token(token)), "consume")))
        answers.append(_call(_job(lambda: answers.append(manager.get_token_data(other)), "peek")))

    errors = _read_then_write(first, then, lambda: manager.consume_token(token), set_isolation)
    assert errors == []
    assert {"b": 2} in answers
