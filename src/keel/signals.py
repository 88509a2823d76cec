"""Signals sent by keel."""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["fixture_imported", "post_state_transition"]

#: Sent once per saved change of a state field, with ``sender`` (the model class),
#: ``instance``, ``previous_state``, ``state`` and ``using``.
post_state_transition = Signal()

#: Sent on commit after a fixture import wrote rows without ``save()`` (bulk upserts,
#: deletes), with ``sender`` (the model class), ``using`` and ``result``. Caches of the model
#: (site settings, static content, page SEO) listen to it to refresh themselves.
fixture_imported = Signal()
