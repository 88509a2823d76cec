"""The newsletter's confirmation tokens: a purpose of their own, valid for two days."""

from __future__ import annotations

from keel.tokens import JsonActionTokenManager


class ConfirmationTokens(JsonActionTokenManager):
    default_ttl_seconds = 2 * 24 * 3600


confirmation_tokens = ConfirmationTokens(prefix="newsletter:confirm")
