"""Concrete test models for keel.models.mixins (uniqueness, validation, meta, files)."""

from __future__ import annotations
