"""Action tokens: JSON payloads behind secure, expiring, single-use URL tokens.

    from keel.tokens import JsonActionTokenManager

    email_tokens = JsonActionTokenManager(purpose="email:confirm")
    token = email_tokens.create_token({"user_id": 42}, ttl_hours=0.5)
    email_tokens.consume_token(token)  # {"user_id": 42}, once

The store is Redis or the ``ActionToken`` table (see
[`JsonActionTokenManager`][keel.tokens.JsonActionTokenManager]). A
[`StateBinding`][keel.tokens.StateBinding] makes tokens die when the state of what they protect
changes; [`OneTimeCodeManager`][keel.tokens.OneTimeCodeManager] issues short numeric codes with
per-subject limits.
"""

from __future__ import annotations

from keel.tokens.base import NewToken, TokenStore
from keel.tokens.codes import OneTimeCodeManager, TooManyCodes
from keel.tokens.database_store import DatabaseTokenStore
from keel.tokens.exceptions import (
    InvalidPayload,
    InvalidToken,
    TokenError,
    TokenStoreBusy,
    TokenStoreUnavailable,
)
from keel.tokens.manager import (
    JsonActionTokenDatabaseManager,
    JsonActionTokenManager,
    JsonActionTokenRedisManager,
    get_json_action_token_manager,
)
from keel.tokens.redis_store import RedisTokenStore
from keel.tokens.state import StateBinding, UserStateBinding
from keel.tokens.views import ActionTokenConfirmView

__all__ = [
    "ActionTokenConfirmView",
    "DatabaseTokenStore",
    "InvalidPayload",
    "InvalidToken",
    "JsonActionTokenDatabaseManager",
    "JsonActionTokenManager",
    "JsonActionTokenRedisManager",
    "NewToken",
    "OneTimeCodeManager",
    "RedisTokenStore",
    "StateBinding",
    "TokenError",
    "TokenStore",
    "TokenStoreBusy",
    "TokenStoreUnavailable",
    "TooManyCodes",
    "UserStateBinding",
    "get_json_action_token_manager",
]
