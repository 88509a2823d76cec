"""Token managers: JSON payloads behind single-use, expiring, URL-safe tokens.

A manager hands out ``secrets.token_urlsafe`` tokens and keeps, in its store, only an HMAC of
its purpose and the token keyed with the project's ``SECRET_KEY``; subjects are stored as
keyed digests too. Tokens and subjects stored under a key of ``SECRET_KEY_FALLBACKS`` are still
found, so rotating the secret does not kill the links in flight. Everything that can be refused
(a malformed token, a TTL out of range, a payload that is not a JSON object, too large, too
deep, or whose keys collide in JSON) is refused before any I/O.
"""

from __future__ import annotations

import binascii
import json
import json.encoder
import logging
import math
import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

from django.core.serializers.json import DjangoJSONEncoder

from keel.conf import keel_settings
from keel.redis import is_configured
from keel.tokens.base import NewToken, TokenStore
from keel.tokens.database_store import DatabaseTokenStore
from keel.tokens.exceptions import InvalidPayload, TokenError
from keel.tokens.keys import current_secrets, keyed_digest, keyed_hasher, project_secrets
from keel.tokens.redis_store import RedisTokenStore
from keel.tokens.state import FINGERPRINT_LENGTH, StateBinding

__all__ = [
    "JsonActionTokenDatabaseManager",
    "JsonActionTokenManager",
    "JsonActionTokenRedisManager",
    "get_json_action_token_manager",
]

logger = logging.getLogger("keel.tokens")

DEFAULT_PREFIX = "auth:action"
#: Longest purpose: the ``purpose`` column of [`keel.models.ActionToken`][keel.models.ActionToken].
MAX_PREFIX_LENGTH = 100
#: Longest subject: the ``subject`` column of [`keel.models.ActionToken`][keel.models.ActionToken].
MAX_SUBJECT_LENGTH = 255
#: Fewer random bytes would make tokens guessable.
MIN_TOKEN_BYTES = 16
#: Shortest lifetime in seconds: a token must outlive the round trip that stores it, in every
#: store's unit (Redis milliseconds, database microseconds).
MIN_TTL = 1.0
#: Deepest ``max_payload_depth`` a manager may set. Decoding a document takes one level of
#: Python's recursion limit (1000 by default) per level of nesting: bounded so, a document
#: always decodes on a fresh thread's stack, whatever the depth of the consumer's own.
MAX_PAYLOAD_DEPTH = 100
#: Salts of the keyed digests: a token digest is never equal to a subject digest.
TOKEN_SALT = "keel.tokens.token"
SUBJECT_SALT = "keel.tokens.subject"
#: A digest collision of 256-bit random tokens does not happen; a bounded retry still beats
#: an unbounded loop should a store misbehave.
CREATE_ATTEMPTS = 3

_T = TypeVar("_T")
_URLSAFE = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
#: base64's URL-safe alphabet, from its standard one.
_URLSAFE_BASE64 = bytes.maketrans(b"+/", b"-_")
_redis_store = RedisTokenStore()
#: ``keel_settings.get``: the value of a setting of the hot paths, as its typed property
#: returns it, without the property's two extra calls.
_setting = keel_settings.get


def _ttl_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r:.60}.")
    try:
        return float(value)
    except OverflowError:
        # An int beyond float's range: infinitely long as far as a TTL goes.
        return math.inf


def _seconds(value: float) -> str:
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidPayload(
                    f"The token payload has keys that collide as JSON key {key!r} (for "
                    "instance 1 and '1', or True and 'true'): one would be lost."
                )
            seen.add(key)
    return data


#: Values JSON writes as themselves, without the encoder's ``default``.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _flat(data: dict[Any, Any]) -> bool:
    """Whether ``data`` has only str keys and scalar values: its JSON reads back equal."""
    for key, value in data.items():
        if type(key) is not str or type(value) not in _SCALARS:
            return False
    return True


#: Reads a document back as consume will, refusing keys that collide (built once: a decoder
#: per call would cost more than the decoding).
_CHECKING_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)
#: Reads stored documents (``json.loads`` without its per-call argument checks).
_DECODER = json.JSONDecoder()


def _flat_encoder(encoder: json.JSONEncoder) -> Callable[[dict[str, Any], int], Any] | None:
    """The C encoder that ``encoder.encode`` uses, for the dicts that
    [`_flat`][keel.tokens.manager._flat] accepts: ``"".join(scan(data, 0))`` is
    ``encoder.encode(data)`` at about half its cost. ``None`` when ``encoder``'s class changes
    how it encodes.

    ``encoder.encode`` builds its C encoder anew on every call, with a dict to detect cycles;
    a flat dict holds no container, hence no cycle, and no value that reaches ``default``, so
    one C encoder without that dict, built with ``encoder``'s own options, writes it the same.
    """
    # The C encoder of the json package (absent from its type stubs; None without _json).
    c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
    cls = type(encoder)
    if (
        c_make_encoder is None
        or cls.encode is not json.JSONEncoder.encode
        or cls.iterencode is not json.JSONEncoder.iterencode
        or encoder.indent is not None
    ):
        return None
    return c_make_encoder(
        None,
        encoder.default,
        json.encoder.encode_basestring_ascii
        if encoder.ensure_ascii
        else json.encoder.encode_basestring,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )


def _on_fresh_stack(function: Callable[[Any], _T], value: Any) -> _T:
    """``function(value)`` run on a new thread, whose stack is empty; its result or error."""
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, function(value)))
        except BaseException as exc:  # handed back to the caller's thread as it is
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="keel-tokens-decode", daemon=True)
    thread.start()
    thread.join()
    succeeded, result = outcome[0]
    if not succeeded:
        raise result
    return result  # type: ignore[no-any-return]


def _json(function: Callable[[Any], _T], value: Any) -> _T:
    """``function(value)`` (a JSON encoder or decoder), also when the caller's stack is full.

    The C encoder and decoder take a level of the recursion limit per level of nesting:
    called deep in a stack, they raise ``RecursionError`` on a document they read anywhere
    else. That must never burn a token a consume has already deleted (nor refuse a payload
    for where its creator's stack is): the work is then done again on a fresh stack.
    """
    try:
        return function(value)
    except RecursionError:
        return _on_fresh_stack(function, value)


#: Most digits of an int in a payload: Python's default ``sys.get_int_max_str_digits()``. A
#: process that raised its own limit could write a longer int that no process with the
#: default limit reads back.
MAX_INT_DIGITS = 4300
_LONG_DIGITS = re.compile(rf"[0-9]{{{MAX_INT_DIGITS + 1}}}", re.ASCII)


def _has_long_int(value: Any) -> bool:
    """Whether ``value`` holds an int of more than ``MAX_INT_DIGITS`` digits."""
    limit, stack = 10**MAX_INT_DIGITS, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool):
            if abs(item) >= limit:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _depth(value: Any) -> int:
    """How deeply JSON objects and arrays nest in ``value`` (1 for a flat object)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


class JsonActionTokenManager:
    """Create, peek at, consume and delete action tokens of one purpose.

    ``purpose`` (the seed's keyword ``prefix`` is the same thing and still accepted) names the flow:
    a token created by a manager is unknown to managers of other purposes. The store is picked on
    every call from ``KEEL['TOKEN_STORE']``: ``'redis'``, ``'database'``, or ``'auto'`` (Redis when
    ``KEEL['REDIS_URL']`` is set, else the database), so a manager can be created at import time.
    ``using`` names the database of the database store; ``store`` fixes the store (any
    [`TokenStore`][keel.tokens.TokenStore]). ``state`` (a
    [`StateBinding`][keel.tokens.StateBinding]) binds each token to the state of the instance its
    payload names: peek and consume answer ``None`` once that state changed.

    Guarantees: the store never holds the token itself, only keyed digests (of the token and of the
    subject); [`consume_token`][keel.tokens.manager.JsonActionTokenManager.consume_token] returns
    the payload to one caller only, however many race; an expired token is never returned; a token
    is returned only once it is stored (a store failure raises
    [`TokenStoreUnavailable`][keel.tokens.TokenStoreUnavailable]).
    """

    purpose: str
    """The flow this manager's tokens belong to: part of every digest and storage key, so a
    token of one purpose is unknown to the managers of the others."""

    #: Random bytes per token; 32 gives 43 URL-safe characters (256 bits).
    token_bytes: ClassVar[int] = 32
    #: Lifetime of a token created without a TTL; ``None``: ``KEEL['TOKEN_DEFAULT_TTL']``.
    default_ttl_seconds: ClassVar[float | None] = None
    #: Encoder of payloads; what comes back is its JSON form (dates and decimals as strings).
    json_encoder: ClassVar[type[json.JSONEncoder]] = DjangoJSONEncoder
    #: Deepest nesting of objects and arrays a payload may have (a flat object is 1): 1 to
    #: 100, so that an accepted document always decodes (checked when a manager is created).
    max_payload_depth: ClassVar[int] = 32

    def __init__(
        self,
        purpose: str | None = None,
        *,
        prefix: str | None = None,
        using: str | None = None,
        store: TokenStore | None = None,
        state: StateBinding | None = None,
    ) -> None:
        prefix = _purpose(purpose, prefix)
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}: {prefix!r}.")
        if not prefix or len(prefix) > MAX_PREFIX_LENGTH or not prefix.isprintable():
            raise ValueError(
                f"prefix must be 1 to {MAX_PREFIX_LENGTH} printable characters, got {prefix!r}."
            )
        if any(c.isspace() for c in prefix):
            raise ValueError(f"prefix must not contain spaces, got {prefix!r}.")
        depth = self.max_payload_depth
        if (
            isinstance(depth, bool)
            or not isinstance(depth, int)
            or not 1 <= depth <= MAX_PAYLOAD_DEPTH
        ):
            raise ValueError(
                f"{type(self).__name__}.max_payload_depth must be an int from 1 to "
                f"{MAX_PAYLOAD_DEPTH} (deeper documents may not decode where a consume runs), "
                f"got {depth!r}."
            )
        if self.token_bytes < MIN_TOKEN_BYTES:
            raise ValueError(
                f"{type(self).__name__}.token_bytes must be at least {MIN_TOKEN_BYTES} "
                f"(128 random bits), got {self.token_bytes}."
            )
        self.purpose = prefix
        self._token_length = self.token_length()
        # (secret, purpose, keyed_hasher of both): the hasher of the last digest's key.
        self._hasher: tuple[str | bytes, str, Callable[[str], str]] | None = None
        self.using = using
        self.store = store
        self.state = state
        self._database_store = DatabaseTokenStore(using)
        # One encoder for every call: json.dumps(cls=...) would build one per payload.
        self._encoder = self.json_encoder(
            ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
        self._encode_flat = _flat_encoder(self._encoder)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.purpose!r})"

    @property
    def prefix(self) -> str:
        """The seed's name of [`purpose`][keel.tokens.manager.JsonActionTokenManager.purpose]:
        the same value, kept for code written against it."""
        return self.purpose

    @prefix.setter
    def prefix(self, value: str) -> None:
        self.purpose = value

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

    def random_token(self) -> str:
        """A new random token, ``secrets.token_urlsafe(token_bytes)``; stores nothing.

        The token is valid nowhere until a store holds it: to hand out a usable token, call
        [`create_token`][keel.tokens.manager.JsonActionTokenManager.create_token]. Subclasses
        override this method (not its alias) to change how tokens are drawn.
        """
        # secrets.token_urlsafe() itself (os.urandom, URL-safe base64 without padding), without
        # its four calls in Python.
        encoded = binascii.b2a_base64(os.urandom(self.token_bytes), newline=False)
        return encoded.translate(_URLSAFE_BASE64).rstrip(b"=").decode()

    make_token = random_token
    """The seed's name of
    [`random_token`][keel.tokens.manager.JsonActionTokenManager.random_token] (the same function).
    Unlike Django's ``PasswordResetTokenGenerator.make_token``, the token it returns is not usable
    until stored."""

    def is_well_formed(self, token: str) -> bool:
        """Whether ``token`` could have been made by
        [`random_token`][keel.tokens.manager.JsonActionTokenManager.random_token] (no I/O)."""
        if not isinstance(token, str):
            raise TypeError(f"A token is a str, got {type(token).__name__}: {token!r:.80}.")
        return len(token) == self._token_length and _URLSAFE.fullmatch(token) is not None

    def digest(self, token: str, secret: str | bytes | None = None) -> str:
        """The key under which ``token`` is stored: 64 hex characters.

        An HMAC-SHA256 of the purpose and the token, keyed with ``secret`` (by default
        ``SECRET_KEY``): a token of another project or purpose has another digest.
        """
        if secret is None:
            secret = current_secrets()[0]
        # The hasher of the last key is kept: most digests of a manager use the one key.
        last = self._hasher
        if last is None or last[0] is not secret or last[1] is not self.purpose:
            purpose = self.purpose
            last = self._hasher = (
                secret,
                purpose,
                keyed_hasher(TOKEN_SALT, secret, f"{purpose}\0"),
            )
        return last[2](token)

    def digests(self, token: str) -> list[str]:
        """The digests of ``token`` under ``SECRET_KEY`` then each ``SECRET_KEY_FALLBACKS``."""
        return [self.digest(token, secret) for secret in current_secrets()]

    def subject_digest(self, subject: str | int, secret: str | bytes | None = None) -> str:
        """The key under which tokens of ``subject`` are indexed: 64 hex characters.

        Exact (``"josé"``, ``"JOSE"`` and ``"jose "`` differ whatever the database
        collation) and never the subject in clear.
        """
        return keyed_digest(
            SUBJECT_SALT, f"{self.purpose}\0{self._required_subject(subject)}", secret
        )

    def _candidate_digests(self, token: str) -> Iterator[str]:
        """The digests of a well-formed ``token``, current key first, each computed only when
        the previous one found nothing (a fallback key costs nothing until a lookup misses)."""
        if not self.is_well_formed(token):
            return
        for secret in current_secrets():
            yield self.digest(token, secret)

    # -- payloads -------------------------------------------------------------------------

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``payload`` and return the dict to store; raise ``InvalidPayload``.

        Subclasses override it to require their own keys (call ``super()`` first).
        """
        if type(payload) is not dict and not isinstance(payload, Mapping):
            raise InvalidPayload(
                f"A token payload is a dict (a JSON object), got {type(payload).__name__}."
            )
        return dict(payload)

    def encode_payload(self, payload: Mapping[str, Any]) -> str:
        """The JSON document stored for ``payload``, validated and within the size limit."""
        return self._encode(payload)[0]

    def _encode(self, payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The JSON document of ``payload`` and the payload it reads back as."""
        data = self.validate_payload(payload)
        flat = _flat(data)
        try:
            try:
                if flat and self._encode_flat is not None:
                    text = "".join(self._encode_flat(data, 0))
                else:
                    text = self._encoder.encode(data)
            except RecursionError:  # as in _json(), without a call on the usual path
                text = _on_fresh_stack(self._encoder.encode, data)
            # An ASCII str (the usual payload) has as many UTF-8 bytes as characters, and
            # says so without a scan.
            size = len(text) if text.isascii() else len(text.encode())
        except (TypeError, ValueError, RecursionError) as exc:
            # RecursionError: a payload nested thousands of levels deep.
            raise InvalidPayload(f"The token payload cannot be written as JSON: {exc}") from exc
        # A long int writes a long run of digits: without one, no walk.
        if size > MAX_INT_DIGITS and _LONG_DIGITS.search(text) and _has_long_int(data):
            raise InvalidPayload(
                f"The token payload holds an int of more than {MAX_INT_DIGITS} digits, which a "
                "process with Python's default sys.get_int_max_str_digits() cannot read back."
            )
        limit: int = _setting("TOKEN_MAX_PAYLOAD_BYTES")
        if size > limit:
            raise InvalidPayload(
                f"The token payload is {size} bytes of JSON, more than "
                f"KEEL['TOKEN_MAX_PAYLOAD_BYTES'] = {limit}. Store an id and load the rest."
            )
        if flat:
            return text, data  # read back as it is: nothing can collide or nest
        # Read the document back as consume will: what cannot be read back exactly (keys that
        # collide once written as JSON, nesting too deep to decode) is refused now, before the
        # token exists, never after a consume has deleted it.
        try:
            decoded = _json(_CHECKING_DECODER.decode, text)
        except RecursionError as exc:
            raise InvalidPayload(self._too_deep()) from exc
        # Each level opens a bracket: a document with few brackets (as most are) cannot be
        # too deep, and needs no walk.
        brackets = text.count("{") + text.count("[")
        if brackets > self.max_payload_depth and _depth(decoded) > self.max_payload_depth:
            raise InvalidPayload(self._too_deep())
        return text, decoded

    def _too_deep(self) -> str:
        return (
            f"The token payload is nested more than {type(self).__name__}.max_payload_depth = "
            f"{self.max_payload_depth} levels deep."
        )

    def decode_payload(self, value: str | None) -> dict[str, Any] | None:
        """The payload of a stored document; ``None`` if absent or not a JSON object."""
        if value is None:
            return None
        try:
            # raw_decode: keel writes documents without surrounding whitespace, so anything
            # left over after the value makes it no document of keel's.
            try:
                data, end = _DECODER.raw_decode(value)
            except RecursionError:  # as in _json(), without a call on the usual path
                data, end = _on_fresh_stack(_DECODER.raw_decode, value)
        except ValueError:
            data = None
        else:
            if end != len(value):
                data = None
        if not isinstance(data, dict):
            logger.warning("Ignoring a %s token whose stored payload is not a JSON object", self)
            return None
        return data

    # -- TTL ------------------------------------------------------------------------------

    def resolve_ttl(
        self, ttl_seconds: float | None = None, ttl_hours: float | None = None
    ) -> float:
        """The lifetime in seconds of a new token.

        ``ValueError`` unless it lies in ``[1, KEEL['TOKEN_MAX_TTL']]`` seconds (both given, a
        NaN, an infinity, or an int too large for a float are refused the same way);
        ``TypeError`` if it is not a number.
        """
        if ttl_seconds is not None and ttl_hours is not None:
            raise ValueError("Give ttl_seconds or ttl_hours, not both.")
        if ttl_seconds is not None:
            ttl, given = _ttl_number("ttl_seconds", ttl_seconds), f"ttl_seconds={ttl_seconds!r}"
        elif ttl_hours is not None:
            ttl, given = _ttl_number("ttl_hours", ttl_hours) * 3600, f"ttl_hours={ttl_hours!r}"
        elif self.default_ttl_seconds is not None:
            ttl, given = float(self.default_ttl_seconds), "default_ttl_seconds"
        else:
            ttl, given = float(_setting("TOKEN_DEFAULT_TTL")), "KEEL['TOKEN_DEFAULT_TTL']"
        limit: float = _setting("TOKEN_MAX_TTL")
        if not MIN_TTL <= ttl <= limit:  # NaN fails both comparisons
            raise ValueError(
                f"A token lifetime must be between {_seconds(MIN_TTL)} and {_seconds(limit)} s "
                f"(KEEL['TOKEN_MAX_TTL']), got {given:.80}."
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

    def _subject_digests(self, subject: str | int) -> list[str]:
        """The digests of ``subject`` under each key, current key first (validated first)."""
        self._required_subject(subject)
        return [self.subject_digest(subject, key) for key in current_secrets()]

    # -- state binding --------------------------------------------------------------------

    def _state_key(self, state: StateBinding, payload: Mapping[str, Any]) -> None:
        try:
            state.key_of(payload)
        except KeyError:
            raise InvalidPayload(
                f"A {self.purpose!r} token is bound to a {state.model._meta.label} named by the "
                f"payload's {state.payload_key!r} key, which the payload lacks."
            ) from None

    def _bound(self, text: str, data: dict[str, Any], instance: Any) -> str:
        """The document of a bound token: the fingerprint of the state, then the JSON."""
        assert self.state is not None
        if instance is None:
            raise InvalidPayload(
                f"No {self.state.model._meta.label} has {self.state.lookup}="
                f"{self.state.key_of(data)!r}: a {self.purpose!r} token bound to it would be dead."
            )
        return self.state.fingerprint(instance, self.purpose) + text

    def _document(self, text: str, data: dict[str, Any]) -> str:
        if self.state is None:
            return text
        self._state_key(self.state, data)
        return self._bound(text, data, self.state.get_instance(data))

    async def _adocument(self, text: str, data: dict[str, Any]) -> str:
        if self.state is None:
            return text
        self._state_key(self.state, data)
        return self._bound(text, data, await self.state.aget_instance(data))

    def _split(self, value: str | None) -> tuple[str, dict[str, Any] | None]:
        """The fingerprint (``""`` when unbound) and payload of a stored document."""
        if value is None or self.state is None:
            return "", self.decode_payload(value)
        return value[:FINGERPRINT_LENGTH], self.decode_payload(value[FINGERPRINT_LENGTH:])

    def _accept(self, value: str | None) -> dict[str, Any] | None:
        """The payload of a stored document, if the state it is bound to has not changed."""
        if self.state is None:
            return self.decode_payload(value)
        fingerprint, payload = self._split(value)
        if payload is None or self.state is None:
            return payload
        instance = self.state.get_instance(payload)
        return payload if self.state.matches(instance, self.purpose, fingerprint) else None

    async def _aaccept(self, value: str | None) -> dict[str, Any] | None:
        fingerprint, payload = self._split(value)
        if payload is None or self.state is None:
            return payload
        instance = await self.state.aget_instance(payload)
        return payload if self.state.matches(instance, self.purpose, fingerprint) else None

    def _entry(self, token: str, value: str, ttl: float, subjects: list[str]) -> NewToken:
        if not subjects:
            return NewToken(self.purpose, self.digest(token), value, ttl)
        return NewToken(self.purpose, self.digest(token), value, ttl, subjects[0], (*subjects[1:],))

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

        ``ttl_seconds`` or ``ttl_hours`` (fractions allowed) set its lifetime, else the default.
        With ``subject`` (a user id, an email), the subject's previous tokens of this purpose are
        revoked, also those issued under a key of ``SECRET_KEY_FALLBACKS``. Raises
        ``ValueError``/``TypeError`` (TTL out of range, bad subject),
        [`InvalidPayload`][keel.tokens.InvalidPayload] before any I/O, and
        [`TokenStoreUnavailable`][keel.tokens.TokenStoreUnavailable] if the store did not answer
        (then no token is handed out, and every token of the subject stays revocable).
        """
        ttl = self.resolve_ttl(ttl_seconds, ttl_hours)
        text, data = self._encode(payload)
        subjects = [] if subject is None else self._subject_digests(subject)
        value = text if self.state is None else self._document(text, data)
        store = self.get_store()
        for _ in range(CREATE_ATTEMPTS):
            token = self.random_token()
            if store.put(self._entry(token, value, ttl, subjects)):
                return token
        raise TokenError(f"The {store.name} token store refused {CREATE_ATTEMPTS} new tokens.")

    def _first(self, token: str, lookup: Callable[[str, str], _T]) -> _T | None:
        """``lookup(purpose, digest)`` for each key's digest of ``token``, until one answers."""
        # _candidate_digests() inlined: this is every consume's path.
        if not self.is_well_formed(token):
            return None
        for secret in current_secrets():
            found = lookup(self.purpose, self.digest(token, secret))
            if found:
                return found
        return None

    async def _afirst(self, token: str, lookup: Callable[[str, str], Awaitable[_T]]) -> _T | None:
        for digest in self._candidate_digests(token):
            found = await lookup(self.purpose, digest)
            if found:
                return found
        return None

    def get_token_data(self, token: str) -> dict[str, Any] | None:
        """The payload of a live token, leaving it usable; ``None`` if not a live token.

        A bound token found with another state than its own is deleted: it stays dead when
        the state changes back (an e-mail address changed, then restored).
        """
        store = self.get_store()
        if self.state is None:
            return self._accept(self._first(token, store.get))
        for digest in self._candidate_digests(token):
            value = store.get(self.purpose, digest)
            if value:
                payload = self._accept(value)
                if payload is None:
                    store.delete(self.purpose, digest)
                return payload
        return None

    def consume_token(self, token: str) -> dict[str, Any] | None:
        """The payload of a live token, which is deleted: one caller only ever gets it."""
        value = self._first(token, self.get_store().pop)
        return self.decode_payload(value) if self.state is None else self._accept(value)

    def delete_token(self, token: str) -> bool:
        """Delete a token; whether it existed."""
        return bool(self._first(token, self.get_store().delete))

    def revoke_subject(self, subject: str | int) -> int:
        """Delete the live tokens created for ``subject``; how many were deleted."""
        store = self.get_store()
        return sum(
            store.revoke_subject(self.purpose, self.subject_digest(subject, key))
            for key in project_secrets()
        )

    async def acreate_token(
        self,
        payload: Mapping[str, Any],
        *,
        ttl_seconds: float | None = None,
        ttl_hours: float | None = None,
        subject: str | int | None = None,
    ) -> str:
        """Async [`create_token`][keel.tokens.manager.JsonActionTokenManager.create_token] (the
        asyncio Redis client, or the async ORM path)."""
        ttl = self.resolve_ttl(ttl_seconds, ttl_hours)
        text, data = self._encode(payload)
        subjects = [] if subject is None else self._subject_digests(subject)
        value = await self._adocument(text, data)
        store = self.get_store()
        for _ in range(CREATE_ATTEMPTS):
            token = self.random_token()
            if await store.aput(self._entry(token, value, ttl, subjects)):
                return token
        raise TokenError(f"The {store.name} token store refused {CREATE_ATTEMPTS} new tokens.")

    async def aget_token_data(self, token: str) -> dict[str, Any] | None:
        """Async [`get_token_data`][keel.tokens.manager.JsonActionTokenManager.get_token_data]."""
        store = self.get_store()
        if self.state is None:
            return await self._aaccept(await self._afirst(token, store.aget))
        for digest in self._candidate_digests(token):
            value = await store.aget(self.purpose, digest)
            if value:
                payload = await self._aaccept(value)
                if payload is None:
                    await store.adelete(self.purpose, digest)
                return payload
        return None

    async def aconsume_token(self, token: str) -> dict[str, Any] | None:
        """Async [`consume_token`][keel.tokens.manager.JsonActionTokenManager.consume_token]."""
        return await self._aaccept(await self._afirst(token, self.get_store().apop))

    async def adelete_token(self, token: str) -> bool:
        """Async [`delete_token`][keel.tokens.manager.JsonActionTokenManager.delete_token]."""
        return bool(await self._afirst(token, self.get_store().adelete))

    async def arevoke_subject(self, subject: str | int) -> int:
        """Async [`revoke_subject`][keel.tokens.manager.JsonActionTokenManager.revoke_subject]."""
        store = self.get_store()
        revoked = 0
        for key in project_secrets():
            revoked += await store.arevoke_subject(self.purpose, self.subject_digest(subject, key))
        return revoked


class JsonActionTokenRedisManager(JsonActionTokenManager):
    """A manager whose tokens always live in Redis (``KEEL['REDIS_URL']`` must be set)."""

    def get_store(self) -> TokenStore:
        return self.store or _redis_store


class JsonActionTokenDatabaseManager(JsonActionTokenManager):
    """A manager whose tokens always live in the ``ActionToken`` table."""

    def get_store(self) -> TokenStore:
        return self.store or self._database_store


def get_json_action_token_manager(
    purpose: str | None = None, *, prefix: str | None = None
) -> JsonActionTokenManager:
    """A [`JsonActionTokenManager`][keel.tokens.manager.JsonActionTokenManager] for ``purpose``
    (or the seed's keyword ``prefix``), its store picked by settings."""
    return JsonActionTokenManager(_purpose(purpose, prefix))


def _purpose(purpose: str | None, prefix: str | None) -> str:
    """The purpose given as ``purpose`` or by its seed name ``prefix``, never both."""
    if purpose is not None and prefix is not None:
        raise TypeError("Give the purpose once: purpose=... or its seed name prefix=..., not both.")
    if purpose is not None:
        return purpose
    return DEFAULT_PREFIX if prefix is None else prefix
