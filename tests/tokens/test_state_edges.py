"""State binding: NULL is its own state, a wrong-typed key names nothing, the primary decides."""

from __future__ import annotations

from typing import Any

import pytest

from keel.tokens import (
    InvalidPayload,
    JsonActionTokenDatabaseManager,
    StateBinding,
    UserStateBinding,
)
from tests.testapp.models.fixtures import FixtureRegionPrice
from tests.testapp.models.tokens import TokenAccount

pytestmark = pytest.mark.django_db(databases=["default", "other"])


def test_null_and_the_string_none_are_one_state() -> None:
    manager = JsonActionTokenDatabaseManager(
        prefix="state:null",
        state=StateBinding(FixtureRegionPrice, ["region"], payload_key="price"),
    )
    price = FixtureRegionPrice.objects.create(code="A", region=None)
    token = manager.create_token({"price": price.pk})
    FixtureRegionPrice.objects.filter(pk=price.pk).update(region="None")
    assert manager.get_token_data(token) is None


def test_a_payload_naming_no_user_by_its_type_is_an_invalid_payload() -> None:
    manager = JsonActionTokenDatabaseManager(prefix="state:type", state=UserStateBinding())
    with pytest.raises(InvalidPayload):
        manager.create_token({"user_id": "ada"})


class ReadsFromOther:
    """A primary/replica router: reads go to the replica ("other"), writes to "default"."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return "other"

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return "default"

    def allow_relation(self, *args: Any, **hints: Any) -> bool:
        return True


def test_state_is_read_from_a_lagging_replica(settings: Any) -> None:
    for alias in ("default", "other"):  # the replica has caught up with the account
        TokenAccount.objects.using(alias).create(pk=7, email="ada@example.com")
    settings.DATABASE_ROUTERS = [f"{__name__}.ReadsFromOther"]
    manager = JsonActionTokenDatabaseManager(
        prefix="state:replica",
        state=StateBinding(TokenAccount, ["email"], payload_key="account"),
    )
    token = manager.create_token({"account": 7})
    TokenAccount.objects.filter(pk=7).update(email="mallory@example.com")  # on the primary
    assert manager.consume_token(token) is None
