"""Errors raised by [`keel.tokens`][keel.tokens]; all derive from
[`keel.exceptions.KeelError`][keel.exceptions.KeelError]."""

from __future__ import annotations

from keel.exceptions import KeelError

__all__ = ["InvalidPayload", "InvalidToken", "TokenError", "TokenStoreUnavailable"]


class TokenError(KeelError):
    """Base class of the errors of [`keel.tokens`][keel.tokens]."""


class InvalidPayload(TokenError, ValueError):
    """A payload was refused before anything was stored.

    It is not a JSON object, holds a value the JSON encoder cannot write, or its JSON form is
    larger than ``KEEL['TOKEN_MAX_PAYLOAD_BYTES']``. Also a ``ValueError``.
    """


class InvalidToken(TokenError):
    """A token is not (or no longer) acceptable for the action at hand.

    The managers never raise it: they answer ``None`` for a malformed, unknown, expired or used
    token. Confirmation views catch it: raise it from a hook (for instance when the payload
    belongs to another user) to answer with the view's "invalid token" response.
    """


class TokenStoreUnavailable(TokenError):
    """The token store did not answer; nothing was created, read or consumed.

    Raised instead of returning ``None`` so that "the store is down" is never mistaken for
    "the token is invalid", and instead of returning a token that was never stored.
    """
