"""The interface every token store implements.

A store keeps JSON documents under digests; it never sees a token. The manager
(``keel.tokens.manager``) turns tokens into digests, checks and encodes payloads, and
validates TTLs before it calls a store, so a store only does I/O.
"""

from __future__ import annotations

import abc
from typing import NamedTuple

__all__ = ["NewToken", "TokenStore"]


class NewToken(NamedTuple):
    """What a store writes for one token."""

    #: The manager's purpose (its ``prefix``); part of the digest and of the storage key.
    purpose: str
    #: Keyed digest (hex HMAC-SHA256) of the purpose and the token: the only trace of the
    #: token in the store.
    digest: str
    #: The JSON document of the payload.
    value: str
    #: Lifetime in seconds, positive and finite (validated by the manager).
    ttl: float
    #: Keyed digest of the subject (never the subject in clear). When set, the entry is
    #: indexed under it and every other live token of ``(purpose, subject)`` is revoked.
    subject: str | None = None
    #: The subject's digests under the project's other keys (``SECRET_KEY_FALLBACKS``): the
    #: entry is indexed under each of them too, and their live tokens are revoked as well, so
    #: that a worker that knows only an older key (during a rolling rotation) finds this
    #: entry when it creates or revokes for the subject.
    aliases: tuple[str, ...] = ()


class TokenStore(abc.ABC):
    """Stores JSON documents under token digests, each with an expiry.

    Guarantees every implementation keeps: an entry is never readable after its expiry;
    [`pop`][keel.tokens.base.TokenStore.pop] returns a document to exactly one caller, however many
    race for it (a loser gets ``None``, never an error); an entry written with a subject is indexed
    before it is readable, and leaves the index only once it is deleted, so
    [`revoke_subject`][keel.tokens.base.TokenStore.revoke_subject] finds it whatever step of a
    create or a revoke failed before; a failure of the backing service raises
    [`TokenStoreUnavailable`][keel.tokens.TokenStoreUnavailable].
    """

    #: Short name shown in messages and benchmarks.
    name: str = "store"

    @abc.abstractmethod
    def put(self, entry: NewToken) -> bool:
        """Store ``entry``; ``False`` when its digest is already taken (nothing written)."""

    @abc.abstractmethod
    def get(self, purpose: str, digest: str) -> str | None:
        """Return the live document under ``digest``, leaving it in place."""

    @abc.abstractmethod
    def pop(self, purpose: str, digest: str) -> str | None:
        """Remove and return the live document under ``digest``, atomically."""

    @abc.abstractmethod
    def delete(self, purpose: str, digest: str) -> bool:
        """Remove the entry under ``digest``; whether there was one."""

    @abc.abstractmethod
    def revoke_subject(self, purpose: str, subject: str) -> int:
        """Remove the live tokens indexed under ``subject`` (a digest); how many were removed."""

    @abc.abstractmethod
    async def aput(self, entry: NewToken) -> bool:
        """Async [`put`][keel.tokens.base.TokenStore.put]."""

    @abc.abstractmethod
    async def aget(self, purpose: str, digest: str) -> str | None:
        """Async [`get`][keel.tokens.base.TokenStore.get]."""

    @abc.abstractmethod
    async def apop(self, purpose: str, digest: str) -> str | None:
        """Async [`pop`][keel.tokens.base.TokenStore.pop]."""

    @abc.abstractmethod
    async def adelete(self, purpose: str, digest: str) -> bool:
        """Async [`delete`][keel.tokens.base.TokenStore.delete]."""

    @abc.abstractmethod
    async def arevoke_subject(self, purpose: str, subject: str) -> int:
        """Async [`revoke_subject`][keel.tokens.base.TokenStore.revoke_subject]."""

    # Counters back the limits of one-time codes. Concrete so that a store written before they
    # existed still works for tokens; it only cannot serve codes.

    def incr(self, purpose: str, key: str, ttl: float) -> int:
        """Add 1 to the counter ``key`` and return its new value, atomically.

        An absent or expired counter starts at 1 and lives ``ttl`` seconds; counting does
        not extend its life.
        """
        raise NotImplementedError(f"The {self.name} token store keeps no counters.")

    def count(self, purpose: str, key: str) -> int:
        """The value of the live counter ``key``; 0 when it is absent or expired."""
        raise NotImplementedError(f"The {self.name} token store keeps no counters.")

    async def acount(self, purpose: str, key: str) -> int:
        """Async [`count`][keel.tokens.base.TokenStore.count]."""
        raise NotImplementedError(f"The {self.name} token store keeps no counters.")

    def admit(self, purpose: str, key: str, limit: int, window: float) -> bool:
        """Record one event under ``key`` unless ``limit`` are recorded already; whether it was.

        A rolling window: each event counts for ``window`` seconds after it was recorded,
        then no more. Atomic: callers racing on one key never record more than ``limit``
        events within any ``window`` seconds. An event refused is not recorded.
        """
        raise NotImplementedError(f"The {self.name} token store keeps no counters.")

    async def aadmit(self, purpose: str, key: str, limit: int, window: float) -> bool:
        """Async ``admit``."""
        raise NotImplementedError(f"The {self.name} token store keeps no counters.")

    def reset(self, purpose: str, key: str) -> None:
        """Forget the counter ``key``."""
        raise NotImplementedError(f"The {self.name} token store keeps no counters.")

    async def aincr(self, purpose: str, key: str, ttl: float) -> int:
        """Async [`incr`][keel.tokens.base.TokenStore.incr]."""
        raise NotImplementedError(f"The {self.name} token store keeps no counters.")

    def count_attempt(self, purpose: str, key: str, ttl: float) -> int:
        """[`incr`][keel.tokens.base.TokenStore.incr] for a guess at a code: the count must outlive
        the caller's transaction.

        A store whose counts a rollback could undo refuses (raises
        [`TokenError`][keel.tokens.TokenError]) rather than count a guess that would be forgotten.
        """
        return self.incr(purpose, key, ttl)

    async def acount_attempt(self, purpose: str, key: str, ttl: float) -> int:
        """Async [`count_attempt`][keel.tokens.base.TokenStore.count_attempt]."""
        return await self.aincr(purpose, key, ttl)

    async def areset(self, purpose: str, key: str) -> None:
        """Async [`reset`][keel.tokens.base.TokenStore.reset]."""
        raise NotImplementedError(f"The {self.name} token store keeps no counters.")
