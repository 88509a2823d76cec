"""Concrete test models for keel.tokens."""

from __future__ import annotations
