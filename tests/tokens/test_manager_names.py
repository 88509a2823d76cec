"""The canonical names of the token API and the older names kept beside them are the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keel.tokens import (
    JsonActionTokenDatabaseManager,
    JsonActionTokenManager,
    OneTimeCodeManager,
    get_json_action_token_manager,
)


def named_three_ways(
    by_name: Callable[..., Any], positionally: Callable[[str], Any], purpose: str
) -> list[Any]:
    """``purpose`` given as ``purpose=``, as ``prefix=`` and positionally; each object made
    answers it under both names."""
    made = [by_name(purpose=purpose), by_name(prefix=purpose), positionally(purpose)]
    for each in made:
        assert each.purpose == each.prefix == purpose
    return made


def test_make_token_is_random_token() -> None:
    assert JsonActionTokenManager.make_token is JsonActionTokenManager.random_token
    manager = JsonActionTokenManager(purpose="names:draw")
    assert manager.make_token == manager.random_token
    assert manager.is_well_formed(manager.make_token())
    assert manager.random_token() != manager.random_token()


def test_purpose_and_prefix_name_the_same_value() -> None:
    by_purpose, by_prefix, positional = named_three_ways(
        JsonActionTokenManager, JsonActionTokenDatabaseManager, "names:flow"
    )
    assert by_purpose.digest("t") == by_prefix.digest("t") == positional.digest("t")
    assert get_json_action_token_manager(purpose="names:flow").purpose == "names:flow"
    assert get_json_action_token_manager(prefix="names:flow").purpose == "names:flow"
    assert JsonActionTokenManager().purpose == get_json_action_token_manager().purpose


def test_setting_prefix_sets_purpose() -> None:
    manager = JsonActionTokenManager(purpose="names:old")
    manager.prefix = "names:new"
    assert manager.purpose == "names:new"


@pytest.mark.parametrize("make", [JsonActionTokenManager, get_json_action_token_manager])
def test_giving_both_names_is_an_error(make: Callable[..., JsonActionTokenManager]) -> None:
    with pytest.raises(TypeError, match="Give the purpose once"):
        make(purpose="names:a", prefix="names:b")


@pytest.mark.django_db
def test_a_token_created_under_one_name_is_found_under_the_other() -> None:
    token = JsonActionTokenManager(prefix="names:shared").create_token({"n": 1})
    assert JsonActionTokenManager(purpose="names:shared").consume_token(token) == {"n": 1}


def test_codes_take_their_purpose_under_either_name() -> None:
    _, by_prefix, _ = named_three_ways(OneTimeCodeManager, OneTimeCodeManager, "names:code")
    assert repr(by_prefix) == "OneTimeCodeManager(purpose='names:code')"
    with pytest.raises(TypeError, match="once"):
        OneTimeCodeManager(purpose="names:code", prefix="names:code")
    with pytest.raises(TypeError, match="needs a purpose"):
        OneTimeCodeManager()
