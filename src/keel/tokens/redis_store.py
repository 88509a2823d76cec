"""The Redis token store: one command per operation, atomic by construction.

Keys: ``<KEY_PREFIX>:token:<purpose>:<digest>`` holds the payload's JSON, always with an
expiry (``SET … NX EX`` or ``PX`` writes value and expiry in one command). Peeking is ``GET``,
consuming is ``GETDEL`` (Redis 6.2 or later): two racing consumers cannot both get the value.
Tokens created for a subject are indexed under
``<KEY_PREFIX>:token-subject:<purpose>:<sha256(subject)>``, so the subject never appears in
clear in a key name.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from keel.redis import get_async_redis, get_redis, log_redis_error, make_key, redis_errors
from keel.tokens.base import NewToken, TokenStore
from keel.tokens.exceptions import TokenStoreUnavailable

__all__ = ["RedisTokenStore"]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _expiry(ttl: float) -> tuple[int | None, int | None]:
    """``(ex, px)`` for ``SET``: whole seconds as EX, anything finer as PX.

    PX is rounded up so that a positive TTL never becomes 0, which Redis refuses.
    """
    if ttl == int(ttl):
        return int(ttl), None
    return None, max(1, math.ceil(ttl * 1000))


def _unavailable(operation: str, exc: BaseException) -> TokenStoreUnavailable:
    log_redis_error(f"tokens.{operation}", exc)
    return TokenStoreUnavailable(
        f"Redis did not answer while trying to {operation} an action token "
        f"({type(exc).__name__}: {exc})."
    )


class RedisTokenStore(TokenStore):
    """Tokens in Redis, through keel's shared clients (:func:`keel.redis.get_redis`)."""

    name = "redis"

    @staticmethod
    def token_key(purpose: str, digest: str) -> str:
        """The key holding the payload of the token with this digest."""
        return make_key("token", purpose, digest)

    @staticmethod
    def subject_key(purpose: str, subject: str) -> str:
        """The key naming the digest of the live token of ``subject``."""
        return make_key("token-subject", purpose, hashlib.sha256(subject.encode()).hexdigest())

    # The subject index is updated with ``SET … GET`` (atomic swap), then the token it
    # displaced is deleted. Concurrent creations for one subject form a chain in which each
    # deletes its predecessor, so exactly the last one stays live. Keys may live in different
    # cluster slots: no MULTI, no script.

    def put(self, entry: NewToken) -> bool:
        key = self.token_key(entry.purpose, entry.digest)
        ex, px = _expiry(entry.ttl)
        try:
            client = get_redis()
            if entry.subject is None:
                return bool(client.set(key, entry.value, nx=True, ex=ex, px=px))
            pipe = client.pipeline(transaction=False)
            pipe.set(key, entry.value, nx=True, ex=ex, px=px)
            pipe.set(
                self.subject_key(entry.purpose, entry.subject), entry.digest, get=True, ex=ex, px=px
            )
            created, previous = pipe.execute()
            previous = _text(previous)
            if previous is not None and previous != entry.digest:
                client.delete(self.token_key(entry.purpose, previous))
        except redis_errors() as exc:
            raise _unavailable("create", exc) from exc
        return bool(created)

    def get(self, purpose: str, digest: str) -> str | None:
        try:
            return _text(get_redis().get(self.token_key(purpose, digest)))
        except redis_errors() as exc:
            raise _unavailable("read", exc) from exc

    def pop(self, purpose: str, digest: str) -> str | None:
        try:
            return _text(get_redis().getdel(self.token_key(purpose, digest)))
        except redis_errors() as exc:
            raise _unavailable("consume", exc) from exc

    def delete(self, purpose: str, digest: str) -> bool:
        try:
            return bool(get_redis().delete(self.token_key(purpose, digest)))
        except redis_errors() as exc:
            raise _unavailable("delete", exc) from exc

    def revoke_subject(self, purpose: str, subject: str) -> int:
        try:
            client = get_redis()
            digest = _text(client.getdel(self.subject_key(purpose, subject)))
            if digest is None:
                return 0
            return int(client.delete(self.token_key(purpose, digest)))
        except redis_errors() as exc:
            raise _unavailable("revoke", exc) from exc

    async def aput(self, entry: NewToken) -> bool:
        key = self.token_key(entry.purpose, entry.digest)
        ex, px = _expiry(entry.ttl)
        try:
            client = get_async_redis()
            if entry.subject is None:
                return bool(await client.set(key, entry.value, nx=True, ex=ex, px=px))
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(key, entry.value, nx=True, ex=ex, px=px)
                pipe.set(
                    self.subject_key(entry.purpose, entry.subject),
                    entry.digest,
                    get=True,
                    ex=ex,
                    px=px,
                )
                created, previous = await pipe.execute()
            previous = _text(previous)
            if previous is not None and previous != entry.digest:
                await client.delete(self.token_key(entry.purpose, previous))
        except redis_errors() as exc:
            raise _unavailable("create", exc) from exc
        return bool(created)

    async def aget(self, purpose: str, digest: str) -> str | None:
        try:
            return _text(await get_async_redis().get(self.token_key(purpose, digest)))
        except redis_errors() as exc:
            raise _unavailable("read", exc) from exc

    async def apop(self, purpose: str, digest: str) -> str | None:
        try:
            return _text(await get_async_redis().getdel(self.token_key(purpose, digest)))
        except redis_errors() as exc:
            raise _unavailable("consume", exc) from exc

    async def adelete(self, purpose: str, digest: str) -> bool:
        try:
            return bool(await get_async_redis().delete(self.token_key(purpose, digest)))
        except redis_errors() as exc:
            raise _unavailable("delete", exc) from exc

    async def arevoke_subject(self, purpose: str, subject: str) -> int:
        try:
            client = get_async_redis()
            digest = _text(await client.getdel(self.subject_key(purpose, subject)))
            if digest is None:
                return 0
            return int(await client.delete(self.token_key(purpose, digest)))
        except redis_errors() as exc:
            raise _unavailable("revoke", exc) from exc
