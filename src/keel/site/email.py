"""Building a correct ``From:`` value from a display name and an address."""

from __future__ import annotations

from email.utils import formataddr

from django.conf import settings

__all__ = ["format_address"]


def format_address(name: str, address: str, encoding: str | None = None) -> str:
    """``"Name" <address>`` as a header value, or ``address`` alone when ``name`` is empty.

    The name is quoted when it contains specials (commas, quotes, parentheses) and encoded
    (RFC 2047) when it is not ASCII; an IDN domain is punycoded. A line break in either part,
    or an address without ``@``, raises ``ValueError`` instead of smuggling another header in.
    """
    if any(c in "\r\n" for c in name + address):
        raise ValueError("An email address or display name cannot contain line breaks.")
    localpart, at, domain = address.strip().rpartition("@")
    if not at or not localpart or not domain:
        raise ValueError(f"{address!r} is not an email address.")
    address = f"{localpart}@{domain.encode('idna').decode('ascii')}"
    return formataddr((name.strip(), address), charset=encoding or settings.DEFAULT_CHARSET)
