"""Keyed digests of keel.tokens: HMAC-SHA256 with the project's secret.

Every digest keel stores (of a token, a subject, the state a token is bound to) is keyed with
``SECRET_KEY``; lookups also try each key of ``SECRET_KEY_FALLBACKS``, so rotating the secret
keeps the links already sent. Another project, with another secret, computes other digests:
its tokens are worthless here even on a shared store.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.encoding import force_bytes

_secrets: tuple[str | bytes, ...] | None = None


def project_secrets() -> list[str | bytes]:
    """``SECRET_KEY`` then each of ``SECRET_KEY_FALLBACKS`` (a new list each call).

    Read from the settings once, then again after each change of either setting
    (``setting_changed``, as ``override_settings`` sends it): every digest needs the key,
    and reading a setting costs more than the rest of a lookup.
    """
    return list(current_secrets())


def current_secrets() -> tuple[str | bytes, ...]:
    """[`project_secrets`][keel.tokens.keys.project_secrets] as a tuple shared by every caller
    (not copied): a new tuple after each change of the settings, the same one until then."""
    return _secrets or _read_secrets()


def _read_secrets() -> tuple[str | bytes, ...]:
    global _secrets
    # One assignment of a whole tuple: a thread never sees it half built.
    _secrets = (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
    return _secrets


def _forget_secrets(*, setting: str, **kwargs: Any) -> None:
    global _secrets
    if setting in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        _secrets = None


setting_changed.connect(_forget_secrets, dispatch_uid="keel.tokens.keys")


@functools.lru_cache(maxsize=256)
def keyed_hasher(salt: str, secret: str | bytes, prefix: str = "") -> Callable[[str], str]:
    """A function of ``message`` equal to ``keyed_digest(salt, prefix + message, secret)``.

    Built once per ``(salt, secret, prefix)`` and then called per digest: a caller that
    digests many messages with one prefix (a purpose) hashes the prefix once, not per message.
    """
    # The key is derived as django.utils.crypto.salted_hmac derives it. The keyed HMAC object,
    # fed the prefix, is the same for every message: it is built once and copied per digest,
    # which costs about half of hmac.digest() (that sets an OpenSSL context up on every call).
    key = hashlib.sha256(force_bytes(salt) + force_bytes(secret)).digest()
    keyed = hmac.new(key, prefix.encode(), digestmod=hashlib.sha256)

    def digest(message: str) -> str:
        mac = keyed.copy()
        mac.update(message.encode())
        return mac.hexdigest()

    return digest


def keyed_digest(salt: str, message: str, secret: str | bytes | None = None) -> str:
    """Hex HMAC-SHA256 (64 characters) of ``message``, keyed with ``secret`` and ``salt``.

    Equal to ``salted_hmac(salt, message, secret, algorithm="sha256").hexdigest()``.
    ``secret`` defaults to ``SECRET_KEY``; ``salt`` keeps digests of different kinds apart.
    """
    return keyed_hasher(salt, current_secrets()[0] if secret is None else secret)(message)
