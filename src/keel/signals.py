"""Signals sent by keel."""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["post_state_transition"]

#: Sent once per saved change of a state field, with ``sender`` (the model class),
#: ``instance``, ``previous_state``, ``state`` and ``using``.
post_state_transition = Signal()
