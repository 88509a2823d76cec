"""Concrete test models for keel.models.mixins (change tracking, preconditions, states)."""

from __future__ import annotations
