"""The Redis token store: one command per operation, atomic by construction.

Keys: ``<KEY_PREFIX>:token:<purpose>:<digest>`` holds the payload's JSON, always with an
expiry (``SET … NX EX`` or ``PX`` writes value and expiry in one command). Peeking is ``GET``,
consuming is ``GETDEL`` (Redis 6.2 or later): two racing consumers cannot both get the value.

Tokens created for a subject are indexed in the sorted set
``<KEY_PREFIX>:token-subject:<purpose>:<subject digest>`` (the subject's keyed digest, never
the subject in clear), scored by their expiry. The index is written *before* the token and a
digest leaves it only once ``DEL`` removed its token (or its expiry has passed), so whatever
step of a create or a revoke fails, every live token of a subject stays in its index and a
later ``RedisTokenStore.revoke_subject`` deletes it.

At most one token (or one-time code) of a subject is live, whatever the interleaving of
creates for it. Each create registers in the index, writes its token, deletes the tokens it
found registered before it, then asks the index whether a create registered after it: that
later create's deletions may have run before this token was written and missed it, so this
token deletes itself before it is handed out (as if the later create had revoked it). Of two
racing creates, the one registered last keeps the only live token.

A token is indexed under its subject's digest for every key the creating worker knows
(``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``): during a rolling rotation, a worker that knows
only the old key still finds, and revokes, a token created by one that knows the new key.
"""

from __future__ import annotations

import functools
import math
import secrets
from typing import Any

from keel.conf import keel_settings
from keel.redis import get_async_redis, get_redis, log_redis_error, make_key, redis_errors
from keel.tokens.base import NewToken, TokenStore
from keel.tokens.exceptions import TokenStoreUnavailable

__all__ = ["RedisTokenStore"]

#: Adds ``ARGV[1]`` (a token digest) to the index ``KEYS[1]``, scored by its expiry: the
#: server's clock plus ``ARGV[2]`` milliseconds. Drops the members already expired, keeps the
#: index as long as its longest-lived member, and returns the expiry and the other members.
#: The token is then written to expire at that same instant (``SET … PXAT``), so it never
#: outlives its place in the index. One key: the script is Cluster-safe.
INDEX_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local expiry = now + tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]))
local others = redis.call('ZRANGE', KEYS[1], 0, -1)
for i = #others, 1, -1 do
  if others[i] == ARGV[1] then table.remove(others, i) end
end
return {expiry, others}
"""

#: Whether the index ``KEYS[1]`` holds a live member that is neither ``ARGV[1]`` (the token
#: just written) nor among ``ARGV[2..]`` (the members the index held when it was added): a
#: create for the same subject that registered later, whose revocation may have run before
#: this token was written and so missed it. One key: Cluster-safe.
SUPERSEDED_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local known = {}
for i = 1, #ARGV do known[ARGV[i]] = true end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  if not known[member] then return 1 end
end
return 0
"""

#: Records an event (the unique member ``ARGV[3]``) in the window ``KEYS[1]`` unless it holds
#: ``ARGV[1]`` events of the last ``ARGV[2]`` milliseconds (by the server's clock); 1 if it was
#: recorded, else 0. Events older than the window leave it; the key lives as long as its
#: newest event counts. One key: Cluster-safe.
WINDOW_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 1
"""

#: Adds 1 to the counter ``KEYS[1]``; gives a counter without expiry (a new one) a lifetime of
#: ``ARGV[1]`` milliseconds. One key, one atomic step: a counter never lives forever.
COUNTER_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
"""


#: Most purposes whose key heads are kept (a process has a few: one per flow).
MAX_KEY_HEADS = 256
#: ``make_key("token", purpose, "")`` per purpose, and the settings version it was made at.
_token_key_heads: tuple[int, dict[str, str]] = (-1, {})


def _token_key_head(purpose: str) -> str | None:
    """``make_key("token", purpose, "")``, built once per purpose and settings version;
    ``None`` while ``KEEL['KEY_PREFIX']`` is derived (the default database may change)."""
    global _token_key_heads
    version, heads = _token_key_heads
    if version != keel_settings.version:
        # Read before the prefix: a reload in between leaves a version already stale.
        version, heads = keel_settings.version, {}
    if keel_settings.get("KEY_PREFIX") is None:
        return None
    if len(heads) >= MAX_KEY_HEADS:
        heads = {}
    head = heads[purpose] = make_key("token", purpose, "")
    _token_key_heads = (version, heads)
    return head


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


@functools.lru_cache(maxsize=64)  # a process uses a few TTLs; called on every create
def _expiry(ttl: float) -> tuple[str, int]:
    """The expiry option of ``SET``: whole seconds as ``EX``, anything finer as ``PX``.

    PX is rounded up so that a positive TTL never becomes 0, which Redis refuses.
    """
    if ttl == int(ttl):
        return "EX", int(ttl)
    return "PX", max(1, math.ceil(ttl * 1000))


def _milliseconds(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


def _unavailable(operation: str, exc: BaseException) -> TokenStoreUnavailable:
    log_redis_error(f"tokens.{operation}", exc)
    return TokenStoreUnavailable(
        f"Redis did not answer while trying to {operation} an action token "
        f"({type(exc).__name__}: {exc})."
    )


def _indexed(reply: Any) -> tuple[int, list[str]]:
    expiry, others = reply
    return int(expiry), [str(_text(member)) for member in others]


def _removed(digests: list[str], deleted: list[Any]) -> list[str]:
    """The digests whose token a ``DEL`` removed: only those may leave the index."""
    return [digest for digest, count in zip(digests, deleted, strict=True) if count]


class RedisTokenStore(TokenStore):
    """Tokens in Redis, through keel's shared clients
    ([`keel.redis.get_redis`][keel.redis.get_redis]).

    With ``wait_replicas`` (a positive int), each consume is followed by ``WAIT wait_replicas
    wait_timeout_ms``: a consume that fewer replicas acknowledged in time raises
    [`TokenStoreUnavailable`][keel.tokens.TokenStoreUnavailable] instead of returning the payload,
    since a failover to a replica that missed it would make the token valid again.
    """

    name = "redis"

    def __init__(self, *, wait_replicas: int = 0, wait_timeout_ms: int = 100) -> None:
        for name, value, least in (
            ("wait_replicas", wait_replicas, 0),
            ("wait_timeout_ms", wait_timeout_ms, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an int of at least {least}, got {value!r}.")
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms

    @staticmethod
    def token_key(purpose: str, digest: str) -> str:
        """The key holding the payload of the token with this digest."""
        # Every token operation builds one: its head is looked up, not built.
        version, heads = _token_key_heads
        head = heads.get(purpose) if version == keel_settings.version else None
        if head is None:
            head = _token_key_head(purpose)
            if head is None:
                return make_key("token", purpose, digest)
        return head + digest

    @staticmethod
    def subject_key(purpose: str, subject: str) -> str:
        """The key of the index of a subject's tokens (``subject`` is already a digest)."""
        return make_key("token-subject", purpose, subject)

    @staticmethod
    def counter_key(purpose: str, key: str) -> str:
        """The key of the counter ``key`` (a digest)."""
        return make_key("token-count", purpose, key)

    @staticmethod
    def window_key(purpose: str, key: str) -> str:
        """The key of the rolling window ``key`` (a digest): a sorted set of events."""
        return make_key("token-window", purpose, key)

    def _indexes(self, entry: NewToken) -> list[str]:
        """The indexes of ``entry``: its subject's, then its aliases'."""
        assert entry.subject is not None
        return [self.subject_key(entry.purpose, s) for s in (entry.subject, *entry.aliases)]

    def _check_replicated(self, acknowledged: Any) -> None:
        if int(acknowledged) < self.wait_replicas:
            raise TokenStoreUnavailable(
                f"Only {int(acknowledged)} of {self.wait_replicas} Redis replicas acknowledged a "
                f"consume within {self.wait_timeout_ms} ms: the token is spent but its action "
                "must not run, since a failover could make it valid again."
            )

    def _revoke(self, client: Any, purpose: str, index: str, digests: list[str]) -> int:
        pipe = client.pipeline(transaction=False)
        for digest in digests:
            pipe.delete(self.token_key(purpose, digest))
        removed = _removed(digests, pipe.execute())
        if removed:
            client.zrem(index, *removed)
        return len(removed)

    async def _arevoke(self, client: Any, purpose: str, index: str, digests: list[str]) -> int:
        async with client.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.delete(self.token_key(purpose, digest))
            removed = _removed(digests, await pipe.execute())
        if removed:
            await client.zrem(index, *removed)
        return len(removed)

    def put(self, entry: NewToken) -> bool:
        key = self.token_key(entry.purpose, entry.digest)
        try:
            # Any: redis-py leaves execute_command untyped.
            client: Any = get_redis()
            if entry.subject is None:
                # execute_command: the command as Redis reads it, without the argument
                # checks of redis-py's set() (this one is well-formed by construction).
                return bool(
                    client.execute_command("SET", key, entry.value, "NX", *_expiry(entry.ttl))
                )
            script = client.register_script(INDEX_SCRIPT)
            ms = _milliseconds(entry.ttl)
            indexed = [
                (index, *_indexed(script(keys=[index], args=[entry.digest, ms])))
                for index in self._indexes(entry)
            ]
            # The first index's expiry is the earliest: the token never outlives a place.
            created = client.set(key, entry.value, nx=True, pxat=indexed[0][1])
            for index, _, others in indexed:
                if others:
                    self._revoke(client, entry.purpose, index, others)
            superseded = client.register_script(SUPERSEDED_SCRIPT)
            if created and any(
                superseded(keys=[index], args=[entry.digest, *others])
                for index, _, others in indexed
            ):
                self._revoke(client, entry.purpose, indexed[0][0], [entry.digest])
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
            client: Any = get_redis()
            reply = client.execute_command("GETDEL", self.token_key(purpose, digest))
            if reply is None:
                return None
            # _text(), without a call on every consume's path.
            value: str = reply.decode() if isinstance(reply, bytes) else str(reply)
            if self.wait_replicas:
                self._check_replicated(client.wait(self.wait_replicas, self.wait_timeout_ms))
        except redis_errors() as exc:
            raise _unavailable("consume", exc) from exc
        return value

    def delete(self, purpose: str, digest: str) -> bool:
        try:
            return bool(get_redis().delete(self.token_key(purpose, digest)))
        except redis_errors() as exc:
            raise _unavailable("delete", exc) from exc

    def revoke_subject(self, purpose: str, subject: str) -> int:
        index = self.subject_key(purpose, subject)
        try:
            client = get_redis()
            digests = [str(_text(member)) for member in client.zrange(index, 0, -1)]
            return self._revoke(client, purpose, index, digests) if digests else 0
        except redis_errors() as exc:
            raise _unavailable("revoke", exc) from exc

    async def aput(self, entry: NewToken) -> bool:
        key = self.token_key(entry.purpose, entry.digest)
        try:
            client: Any = get_async_redis()
            if entry.subject is None:
                command = ("SET", key, entry.value, "NX", *_expiry(entry.ttl))
                return bool(await client.execute_command(*command))
            script = client.register_script(INDEX_SCRIPT)
            ms = _milliseconds(entry.ttl)
            indexed = [
                (index, *_indexed(await script(keys=[index], args=[entry.digest, ms])))
                for index in self._indexes(entry)
            ]
            created = await client.set(key, entry.value, nx=True, pxat=indexed[0][1])
            for index, _, others in indexed:
                if others:
                    await self._arevoke(client, entry.purpose, index, others)
            superseded = client.register_script(SUPERSEDED_SCRIPT)
            for index, _, others in indexed:
                if created and await superseded(keys=[index], args=[entry.digest, *others]):
                    await self._arevoke(client, entry.purpose, indexed[0][0], [entry.digest])
                    break
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
            client: Any = get_async_redis()
            value = _text(await client.execute_command("GETDEL", self.token_key(purpose, digest)))
            if value is not None and self.wait_replicas:
                acknowledged = await client.wait(self.wait_replicas, self.wait_timeout_ms)
                self._check_replicated(acknowledged)
        except redis_errors() as exc:
            raise _unavailable("consume", exc) from exc
        return value

    async def adelete(self, purpose: str, digest: str) -> bool:
        try:
            return bool(await get_async_redis().delete(self.token_key(purpose, digest)))
        except redis_errors() as exc:
            raise _unavailable("delete", exc) from exc

    async def arevoke_subject(self, purpose: str, subject: str) -> int:
        index = self.subject_key(purpose, subject)
        try:
            client = get_async_redis()
            digests = [str(_text(member)) for member in await client.zrange(index, 0, -1)]
            return await self._arevoke(client, purpose, index, digests) if digests else 0
        except redis_errors() as exc:
            raise _unavailable("revoke", exc) from exc

    def incr(self, purpose: str, key: str, ttl: float) -> int:
        try:
            client = get_redis()
            script = client.register_script(COUNTER_SCRIPT)
            return int(script(keys=[self.counter_key(purpose, key)], args=[_milliseconds(ttl)]))
        except redis_errors() as exc:
            raise _unavailable("count", exc) from exc

    def count(self, purpose: str, key: str) -> int:
        try:
            return int(get_redis().get(self.counter_key(purpose, key)) or 0)
        except redis_errors() as exc:
            raise _unavailable("count", exc) from exc

    async def acount(self, purpose: str, key: str) -> int:
        try:
            return int(await get_async_redis().get(self.counter_key(purpose, key)) or 0)
        except redis_errors() as exc:
            raise _unavailable("count", exc) from exc

    def admit(self, purpose: str, key: str, limit: int, window: float) -> bool:
        try:
            script = get_redis().register_script(WINDOW_SCRIPT)
            args: list[int | str] = [limit, _milliseconds(window), secrets.token_hex(8)]
            return bool(script(keys=[self.window_key(purpose, key)], args=args))
        except redis_errors() as exc:
            raise _unavailable("count", exc) from exc

    async def aadmit(self, purpose: str, key: str, limit: int, window: float) -> bool:
        try:
            script = get_async_redis().register_script(WINDOW_SCRIPT)
            args: list[int | str] = [limit, _milliseconds(window), secrets.token_hex(8)]
            return bool(await script(keys=[self.window_key(purpose, key)], args=args))
        except redis_errors() as exc:
            raise _unavailable("count", exc) from exc

    def reset(self, purpose: str, key: str) -> None:
        try:
            get_redis().delete(self.counter_key(purpose, key))
        except redis_errors() as exc:
            raise _unavailable("count", exc) from exc

    async def aincr(self, purpose: str, key: str, ttl: float) -> int:
        try:
            script = get_async_redis().register_script(COUNTER_SCRIPT)
            keys, args = [self.counter_key(purpose, key)], [_milliseconds(ttl)]
            return int(await script(keys=keys, args=args))
        except redis_errors() as exc:
            raise _unavailable("count", exc) from exc

    async def areset(self, purpose: str, key: str) -> None:
        try:
            await get_async_redis().delete(self.counter_key(purpose, key))
        except redis_errors() as exc:
            raise _unavailable("count", exc) from exc
