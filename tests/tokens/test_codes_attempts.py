"""Attempts at one-time codes are never forgotten: not by a rollback, not by a key rotation."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.test import override_settings

from keel.tokens import OneTimeCodeManager, RedisTokenStore, TokenError
from keel.tokens.base import TokenStore
from keel.tokens.database_store import DatabaseTokenStore

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+33600000001"
OLD_KEY = "old-key-old-key-old-key-old-key"
NEW_KEY = "new-key-new-key-new-key-new-key"


class Refused(Exception):
    """Raised by a caller on a refused code, so that its transaction rolls back."""


def wrong_guesses(code: str, n: int) -> list[str]:
    """``n`` well-formed codes that are not ``code``."""
    return [g for g in (str(i).zfill(6) for i in range(n + 1)) if g != code][:n]


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest) -> TokenStore:
    if request.param == "redis":
        request.getfixturevalue("keel_redis")
        return RedisTokenStore()
    return DatabaseTokenStore()


def test_verifying_inside_a_transaction_of_the_database_store_is_refused() -> None:
    codes = OneTimeCodeManager("code:atomic", store=DatabaseTokenStore())
    code = codes.issue_code(PHONE, {"user_id": 1})
    for guess in wrong_guesses(code, 20):
        refused = pytest.raises(TokenError, match=r"inside a transaction of database 'default'")
        with refused, transaction.atomic():
            codes.verify_code(PHONE, guess)
    with pytest.raises(TokenError, match="non_atomic_requests"), transaction.atomic():
        async_to_sync(codes.averify_code)(PHONE, code)
    # The refused calls counted nothing and consumed nothing: the right code still works once.
    assert codes.verify_code(PHONE, code) == {"user_id": 1}


def test_guesses_in_rolled_back_transactions_count_on_redis(keel_redis: Any) -> None:
    codes = OneTimeCodeManager("code:atomic", store=RedisTokenStore())
    code = codes.issue_code(PHONE, {"user_id": 1})
    for guess in wrong_guesses(code, codes.max_attempts):
        with pytest.raises(Refused), transaction.atomic():  # noqa: PT012
            if codes.verify_code(PHONE, guess) is None:
                raise Refused  # a view under ATOMIC_REQUESTS rolls back on its error
    assert codes.verify_code(PHONE, code) is None


@pytest.mark.parametrize("asynchronous", [False, True])
def test_rotating_the_secret_key_gives_a_live_code_no_new_attempts(
    store: TokenStore, asynchronous: bool
) -> None:
    codes = OneTimeCodeManager("code:rotate", store=store)
    verify = async_to_sync(codes.averify_code) if asynchronous else codes.verify_code
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        code = codes.issue_code(PHONE, {"user_id": 2})
        guesses = wrong_guesses(code, codes.max_attempts)
        for guess in guesses[:-1]:
            assert verify(PHONE, guess) is None
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        assert verify(PHONE, guesses[-1]) is None  # the fifth attempt, the last allowed
        assert verify(PHONE, code) is None  # the sixth: refused, even the right code


def test_a_code_issued_before_a_rotation_is_verified_after_it(store: TokenStore) -> None:
    codes = OneTimeCodeManager("code:rotate", store=store)
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        code = codes.issue_code(PHONE, {"user_id": 3})
        assert codes.verify_code(PHONE, wrong_guesses(code, 1)[0]) is None
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        assert codes.verify_code(PHONE, code) == {"user_id": 3}
