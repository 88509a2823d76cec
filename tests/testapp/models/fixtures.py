"""Concrete test models for keel.fixtures."""

from __future__ import annotations
