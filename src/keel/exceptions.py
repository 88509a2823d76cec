"""Every error keel raises derives from :class:`KeelError`."""

from __future__ import annotations

__all__ = ["KeelError"]


class KeelError(Exception):
    """Base class of every exception raised by keel."""
