"""Errors raised by [`keel.tokens`][keel.tokens]; all derive from
[`keel.exceptions.KeelError`][keel.exceptions.KeelError]."""

from __future__ import annotations

from keel.exceptions import KeelError

__all__ = [
    "InvalidPayload",
    "InvalidToken",
    "TokenError",
    "TokenStoreBusy",
    "TokenStoreUnavailable",
]


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
    """The token store did not answer (or not in time): the outcome of the operation is unknown.

    A command that failed before it reached the store changed nothing. One whose answer timed
    out may have run all the same: a consume that Redis executed but answered late has used
    the token up, and its payload is lost. Either way no action runs: the confirm view answers
    with a server error (500) carrying its protective headers, and the user asks for a new link
    if the old one no longer works. Raised instead of returning ``None`` so that "the store is
    down" is never mistaken for "the token is invalid", and instead of returning a token that
    was never stored.
    """


class TokenStoreBusy(TokenStoreUnavailable):
    """The store refused the operation for now; nothing was created or consumed: retry.

    Raised by the database store when a write inside the caller's transaction (a create, a
    consume, a delete, a revoke, issuing or checking a code) lost a deadlock or a
    serialization failure to a concurrent write (the database rolled that transaction back,
    or its snapshot cannot see the winner: retry it whole), and when SQLite's write lock
    refuses a write (a transaction that read before another connection wrote cannot write: SQLite
    refuses at once rather than risk a deadlock; or the lock was held longer than the
    connection's timeout). The token may still be live:
    ``None`` always means that it is not. A
    [`TokenStoreUnavailable`][keel.tokens.TokenStoreUnavailable], so handled as a store that
    did not answer.
    """
