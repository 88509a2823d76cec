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
    return list(_secrets or _read_secrets())


def _read_secrets() -> tuple[str | bytes, ...]:
    global _secrets
    # One assignment of a whole tuple: a thread never sees it half built.
    _secrets = (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
    return _secrets


def _current_secret() -> str | bytes:
    return (_secrets or _read_secrets())[0]


def _forget_secrets(*, setting: str, **kwargs: Any) -> None:
    global _secrets
    if setting in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        _secrets = None


setting_changed.connect(_forget_secrets, dispatch_uid="keel.tokens.keys")


@functools.lru_cache(maxsize=64)
def _hmac(salt: str, secret: str | bytes) -> hmac.HMAC:
    # The key is derived as django.utils.crypto.salted_hmac derives it. The keyed HMAC object
    # is the same for every digest of a process: it is built once and copied per digest,
    # which costs about half of hmac.digest() (that sets an OpenSSL context up on every call).
    key = hashlib.sha256(force_bytes(salt) + force_bytes(secret)).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


def keyed_digest(salt: str, message: str, secret: str | bytes | None = None) -> str:
    """Hex HMAC-SHA256 (64 characters) of ``message``, keyed with ``secret`` and ``salt``.

    Equal to ``salted_hmac(salt, message, secret, algorithm="sha256").hexdigest()``.
    ``secret`` defaults to ``SECRET_KEY``; ``salt`` keeps digests of different kinds apart.
    """
    digest = _hmac(salt, _current_secret() if secret is None else secret).copy()
    digest.update(message.encode())
    return digest.hexdigest()
