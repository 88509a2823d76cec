"""One live code per subject, however many requests issue codes for it at once."""

from __future__ import annotations

import pytest

from keel.tokens import OneTimeCodeManager
from keel.tokens.database_store import DatabaseTokenStore
from tests.conftest import at_once

pytestmark = pytest.mark.django_db(transaction=True)

CONTENDERS = 6


class ManyCodes(OneTimeCodeManager):
    # The limit under test is one live code: codes per window and attempts stay out of the way.
    max_codes = 1000
    max_attempts = 1000


def test_codes_issued_in_parallel_leave_one_live_code() -> None:
    codes = ManyCodes("code:issue-race", store=DatabaseTokenStore())
    live_per_round = []
    for round_ in range(20):
        subject = f"+3360000{round_:04d}"
        issued, errors = at_once(lambda i, s=subject: codes.issue_code(s, {"n": i}), CONTENDERS)
        assert errors == []
        assert len(issued) == CONTENDERS
        live_per_round.append(sum(codes.verify_code(subject, c) is not None for c in issued))
    assert live_per_round == [1] * 20
