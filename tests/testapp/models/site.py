"""Concrete test models for keel.site."""

from __future__ import annotations
