"""Concrete test models for keel.mixins."""

from __future__ import annotations
