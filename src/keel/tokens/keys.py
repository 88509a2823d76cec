"""Keyed digests of keel.tokens: HMAC-SHA256 with the project's secret.

Every digest keel stores (of a token, a subject, the state a token is bound to) is keyed with
``SECRET_KEY``; lookups also try each key of ``SECRET_KEY_FALLBACKS``, so rotating the secret
keeps the links already sent. Another project, with another secret, computes other digests:
its tokens are worthless here even on a shared store.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from django.conf import settings
from django.utils.encoding import force_bytes

__all__ = ["keyed_digest", "project_secrets"]


def project_secrets() -> list[str | bytes]:
    """``SECRET_KEY`` then each of ``SECRET_KEY_FALLBACKS``."""
    return [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]


@functools.lru_cache(maxsize=64)
def _hmac_key(salt: str, secret: str | bytes) -> bytes:
    # Derived as django.utils.crypto.salted_hmac derives it; cached, since it is the same for
    # every token of a process and costs a hash each time.
    return hashlib.sha256(force_bytes(salt) + force_bytes(secret)).digest()


def keyed_digest(salt: str, message: str, secret: str | bytes | None = None) -> str:
    """Hex HMAC-SHA256 (64 characters) of ``message``, keyed with ``secret`` and ``salt``.

    Equal to ``salted_hmac(salt, message, secret, algorithm="sha256").hexdigest()``.
    ``secret`` defaults to ``SECRET_KEY``; ``salt`` keeps digests of different kinds apart.
    """
    key = settings.SECRET_KEY if secret is None else secret
    return hmac.digest(_hmac_key(salt, key), message.encode(), "sha256").hex()
