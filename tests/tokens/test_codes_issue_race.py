"""One live code per subject, however many requests issue codes for it at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from keel.tokens import OneTimeCodeManager
from keel.tokens.database_store import DatabaseTokenStore

pytestmark = pytest.mark.django_db(transaction=True)

CONTENDERS = 6


class ManyCodes(OneTimeCodeManager):
    # The limit under test is one live code: codes per window and attempts stay out of the way.
    max_codes = 1000
    max_attempts = 1000


def race(work: Callable[[int], Any], n: int) -> tuple[list[Any], list[BaseException]]:
    """Run ``work(i)`` in ``n`` threads started together, each on its own connection."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results.append(work(i))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_codes_issued_in_parallel_leave_one_live_code() -> None:
    codes = ManyCodes("code:issue-race", store=DatabaseTokenStore())
    live_per_round = []
    for round_ in range(20):
        subject = f"+3360000{round_:04d}"
        issued, errors = race(lambda i, s=subject: codes.issue_code(s, {"n": i}), CONTENDERS)
        assert errors == []
        assert len(issued) == CONTENDERS
        live_per_round.append(sum(codes.verify_code(subject, c) is not None for c in issued))
    assert live_per_round == [1] * 20
