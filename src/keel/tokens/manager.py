"""Token managers: JSON payloads behind single-use, expiring, URL-safe tokens.

A manager hands out ``secrets.token_urlsafe`` tokens and keeps, in its store, only the
SHA-256 digest of its purpose and the token. Everything that can be refused (a malformed
token, a bad TTL, a payload that is not a JSON object or is too large) is refused before any
I/O.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import secrets
from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.serializers.json import DjangoJSONEncoder

from keel.conf import keel_settings
from keel.redis import is_configured
from keel.tokens.base import NewToken, TokenStore
from keel.tokens.database_store import DatabaseTokenStore
from keel.tokens.exceptions import InvalidPayload, TokenError
from keel.tokens.redis_store import RedisTokenStore

__all__ = [
    "JsonActionTokenDatabaseManager",
    "JsonActionTokenManager",
    "JsonActionTokenRedisManager",
    "get_json_action_token_manager",
]

logger = logging.getLogger("keel.tokens")

DEFAULT_PREFIX = "auth:action"
#: Longest purpose: the ``purpose`` column of :class:`keel.models.ActionToken`.
MAX_PREFIX_LENGTH = 100
#: Longest subject: the ``subject`` column of :class:`keel.models.ActionToken`.
MAX_SUBJECT_LENGTH = 255
#: Fewer random bytes would make tokens guessable.
MIN_TOKEN_BYTES = 16
#: A digest collision of 256-bit random tokens does not happen; a bounded retry still beats
#: an unbounded loop should a store misbehave.
CREATE_ATTEMPTS = 3

_URLSAFE = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_redis_store = RedisTokenStore()


def _ttl_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r}.")
    return float(value)


def _seconds(value: float) -> str:
    return f"{value:,.3f}".rstrip("0").rstrip(".")


class JsonActionTokenManager:
    """Create, peek at, consume and delete action tokens of one purpose.

    ``prefix`` is the purpose: a token created by a manager is unknown to managers of other
    purposes. The store is picked on every call from ``KEEL['TOKEN_STORE']``: ``'redis'``,
    ``'database'``, or ``'auto'`` (Redis when ``KEEL['REDIS_URL']`` is set, else the
    database), so a manager can be created at import time. ``using`` names the database of the
    database store; ``store`` fixes the store (any :class:`~keel.tokens.TokenStore`).

    Guarantees: the store never holds the token itself; :meth:`consume_token` returns the
    payload to one caller only, however many race; an expired token is never returned; a
    token is returned only once it is stored (a store failure raises
    :class:`~keel.tokens.TokenStoreUnavailable`).
    """

    #: Random bytes per token; 32 gives 43 URL-safe characters (256 bits).
    token_bytes: ClassVar[int] = 32
    #: Lifetime of a token created without a TTL; ``None``: ``KEEL['TOKEN_DEFAULT_TTL']``.
    default_ttl_seconds: ClassVar[float | None] = None
    #: Encoder of payloads; what comes back is its JSON form (dates and decimals as strings).
    json_encoder: ClassVar[type[json.JSONEncoder]] = DjangoJSONEncoder

    def __init__(
        self,
        prefix: str = DEFAULT_PREFIX,
        *,
        using: str | None = None,
        store: TokenStore | None = None,
    ) -> None:
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}: {prefix!r}.")
        if not prefix or len(prefix) > MAX_PREFIX_LENGTH or not prefix.isprintable():
            raise ValueError(
                f"prefix must be 1 to {MAX_PREFIX_LENGTH} printable characters, got {prefix!r}."
            )
        if any(c.isspace() for c in prefix):
            raise ValueError(f"prefix must not contain spaces, got {prefix!r}.")
        if self.token_bytes < MIN_TOKEN_BYTES:
            raise ValueError(
                f"{type(self).__name__}.token_bytes must be at least {MIN_TOKEN_BYTES} "
                f"(128 random bits), got {self.token_bytes}."
            )
        self.prefix = prefix
        self.using = using
        self.store = store
        self._database_store = DatabaseTokenStore(using)
        # One encoder for every call: json.dumps(cls=...) would build one per payload.
        self._encoder = self.json_encoder(
            ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"

    @property
    def purpose(self) -> str:
        """The purpose of this manager's tokens (its ``prefix``)."""
        return self.prefix

    # -- store --------------------------------------------------------------------------

    def get_store(self) -> TokenStore:
        """The store of the next operation: ``store``, else as ``KEEL['TOKEN_STORE']`` says."""
        if self.store is not None:
            return self.store
        choice = keel_settings.TOKEN_STORE
        if choice == "redis" or (choice == "auto" and is_configured()):
            return _redis_store
        return self._database_store

    # -- tokens ---------------------------------------------------------------------------

    @classmethod
    def token_length(cls) -> int:
        """Length of this manager's tokens: ``token_bytes`` in unpadded base64."""
        return math.ceil(cls.token_bytes * 4 / 3)

    def make_token(self) -> str:
        """A new random token, ``secrets.token_urlsafe(token_bytes)``; stores nothing."""
        return secrets.token_urlsafe(self.token_bytes)

    def is_well_formed(self, token: str) -> bool:
        """Whether ``token`` could have been made by :meth:`make_token` (no I/O)."""
        if not isinstance(token, str):
            raise TypeError(f"A token is a str, got {type(token).__name__}: {token!r:.80}.")
        return len(token) == self.token_length() and _URLSAFE.fullmatch(token) is not None

    def digest(self, token: str) -> str:
        """The hex SHA-256 under which ``token`` is stored: of the purpose and the token."""
        return hashlib.sha256(f"{self.prefix}\0{token}".encode()).hexdigest()

    def _digest_if_well_formed(self, token: str) -> str | None:
        return self.digest(token) if self.is_well_formed(token) else None

    # -- payloads -------------------------------------------------------------------------

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``payload`` and return the dict to store; raise ``InvalidPayload``.

        Subclasses override it to require their own keys (call ``super()`` first).
        """
        if not isinstance(payload, Mapping):
            raise InvalidPayload(
                f"A token payload is a dict (a JSON object), got {type(payload).__name__}."
            )
        return dict(payload)

    def encode_payload(self, payload: Mapping[str, Any]) -> str:
        """The JSON document stored for ``payload``, validated and within the size limit."""
        data = self.validate_payload(payload)
        try:
            text = self._encoder.encode(data)
            size = len(text.encode())
        except (TypeError, ValueError, RecursionError) as exc:
            # RecursionError: a payload nested thousands of levels deep.
            raise InvalidPayload(f"The token payload cannot be written as JSON: {exc}") from exc
        limit = keel_settings.TOKEN_MAX_PAYLOAD_BYTES
        if size > limit:
            raise InvalidPayload(
                f"The token payload is {size} bytes of JSON, more than "
                f"KEEL['TOKEN_MAX_PAYLOAD_BYTES'] = {limit}. Store an id and load the rest."
            )
        return text

    def decode_payload(self, value: str | None) -> dict[str, Any] | None:
        """The payload of a stored document; ``None`` if absent or not a JSON object."""
        if value is None:
            return None
        try:
            data = json.loads(value)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            logger.warning("Ignoring a %s token whose stored payload is not a JSON object", self)
            return None
        return data

    # -- TTL ------------------------------------------------------------------------------

    def resolve_ttl(
        self, ttl_seconds: float | None = None, ttl_hours: float | None = None
    ) -> float:
        """The lifetime in seconds of a new token; ``ValueError`` if absent from (0, max]."""
        if ttl_seconds is not None and ttl_hours is not None:
            raise ValueError("Give ttl_seconds or ttl_hours, not both.")
        if ttl_seconds is not None:
            ttl, given = _ttl_number("ttl_seconds", ttl_seconds), f"ttl_seconds={ttl_seconds!r}"
        elif ttl_hours is not None:
            ttl, given = _ttl_number("ttl_hours", ttl_hours) * 3600, f"ttl_hours={ttl_hours!r}"
        elif self.default_ttl_seconds is not None:
            ttl, given = float(self.default_ttl_seconds), "default_ttl_seconds"
        else:
            ttl, given = float(keel_settings.TOKEN_DEFAULT_TTL), "KEEL['TOKEN_DEFAULT_TTL']"
        if not (math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"A token lifetime must be a positive number of seconds: {given}.")
        limit = keel_settings.TOKEN_MAX_TTL
        if ttl > limit:
            raise ValueError(
                f"A token lifetime of {_seconds(ttl)} s ({given}) exceeds "
                f"KEEL['TOKEN_MAX_TTL'] = {_seconds(limit)} s."
            )
        return ttl

    @staticmethod
    def _subject(subject: str | int | None) -> str | None:
        if subject is None:
            return None
        if isinstance(subject, bool) or not isinstance(subject, str | int):
            raise TypeError(f"subject must be a str or an int, got {type(subject).__name__}.")
        text = str(subject)
        if not text or len(text) > MAX_SUBJECT_LENGTH:
            raise ValueError(f"subject must be 1 to {MAX_SUBJECT_LENGTH} characters.")
        return text

    def _required_subject(self, subject: str | int) -> str:
        key = self._subject(subject)
        if key is None:
            raise TypeError("subject must be a str or an int, got None.")
        return key

    def _prepare(
        self,
        payload: Mapping[str, Any],
        ttl_seconds: float | None,
        ttl_hours: float | None,
        subject: str | int | None,
    ) -> tuple[float, str, str | None]:
        ttl = self.resolve_ttl(ttl_seconds, ttl_hours)
        return ttl, self.encode_payload(payload), self._subject(subject)

    def _entry(self, token: str, value: str, ttl: float, subject: str | None) -> NewToken:
        return NewToken(
            purpose=self.prefix, digest=self.digest(token), value=value, ttl=ttl, subject=subject
        )

    # -- operations -----------------------------------------------------------------------

    def create_token(
        self,
        payload: Mapping[str, Any],
        *,
        ttl_seconds: float | None = None,
        ttl_hours: float | None = None,
        subject: str | int | None = None,
    ) -> str:
        """Store ``payload`` and return a new token for it.

        ``ttl_seconds`` or ``ttl_hours`` (fractions allowed) set its lifetime, else the
        default. With ``subject`` (a user id, an email), the subject's previous token of this
        purpose is revoked: at most one stays live. Raises ``ValueError``/``TypeError`` (bad
        TTL or subject), :class:`~keel.tokens.InvalidPayload` before any I/O, and
        :class:`~keel.tokens.TokenStoreUnavailable` if the store did not answer.
        """
        ttl, value, key = self._prepare(payload, ttl_seconds, ttl_hours, subject)
        store = self.get_store()
        for _ in range(CREATE_ATTEMPTS):
            token = self.make_token()
            if store.put(self._entry(token, value, ttl, key)):
                return token
        raise TokenError(f"The {store.name} token store refused {CREATE_ATTEMPTS} new tokens.")

    def get_token_data(self, token: str) -> dict[str, Any] | None:
        """The payload of a live token, leaving it usable; ``None`` if not a live token."""
        digest = self._digest_if_well_formed(token)
        if digest is None:
            return None
        return self.decode_payload(self.get_store().get(self.prefix, digest))

    def consume_token(self, token: str) -> dict[str, Any] | None:
        """The payload of a live token, which is deleted: one caller only ever gets it."""
        digest = self._digest_if_well_formed(token)
        if digest is None:
            return None
        return self.decode_payload(self.get_store().pop(self.prefix, digest))

    def delete_token(self, token: str) -> bool:
        """Delete a token; whether it existed."""
        digest = self._digest_if_well_formed(token)
        if digest is None:
            return False
        return self.get_store().delete(self.prefix, digest)

    def revoke_subject(self, subject: str | int) -> int:
        """Delete the live token created for ``subject``; how many tokens were deleted."""
        return self.get_store().revoke_subject(self.prefix, self._required_subject(subject))

    async def acreate_token(
        self,
        payload: Mapping[str, Any],
        *,
        ttl_seconds: float | None = None,
        ttl_hours: float | None = None,
        subject: str | int | None = None,
    ) -> str:
        """Async :meth:`create_token` (the asyncio Redis client, or the async ORM path)."""
        ttl, value, key = self._prepare(payload, ttl_seconds, ttl_hours, subject)
        store = self.get_store()
        for _ in range(CREATE_ATTEMPTS):
            token = self.make_token()
            if await store.aput(self._entry(token, value, ttl, key)):
                return token
        raise TokenError(f"The {store.name} token store refused {CREATE_ATTEMPTS} new tokens.")

    async def aget_token_data(self, token: str) -> dict[str, Any] | None:
        """Async :meth:`get_token_data`."""
        digest = self._digest_if_well_formed(token)
        if digest is None:
            return None
        return self.decode_payload(await self.get_store().aget(self.prefix, digest))

    async def aconsume_token(self, token: str) -> dict[str, Any] | None:
        """Async :meth:`consume_token`."""
        digest = self._digest_if_well_formed(token)
        if digest is None:
            return None
        return self.decode_payload(await self.get_store().apop(self.prefix, digest))

    async def adelete_token(self, token: str) -> bool:
        """Async :meth:`delete_token`."""
        digest = self._digest_if_well_formed(token)
        if digest is None:
            return False
        return await self.get_store().adelete(self.prefix, digest)

    async def arevoke_subject(self, subject: str | int) -> int:
        """Async :meth:`revoke_subject`."""
        return await self.get_store().arevoke_subject(self.prefix, self._required_subject(subject))


class JsonActionTokenRedisManager(JsonActionTokenManager):
    """A manager whose tokens always live in Redis (``KEEL['REDIS_URL']`` must be set)."""

    def get_store(self) -> TokenStore:
        return self.store or _redis_store


class JsonActionTokenDatabaseManager(JsonActionTokenManager):
    """A manager whose tokens always live in the ``ActionToken`` table."""

    def get_store(self) -> TokenStore:
        return self.store or self._database_store


def get_json_action_token_manager(prefix: str = DEFAULT_PREFIX) -> JsonActionTokenManager:
    """A :class:`JsonActionTokenManager` for ``prefix``, its store picked by settings."""
    return JsonActionTokenManager(prefix=prefix)
