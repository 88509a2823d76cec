"""Model save-behaviour mixins."""

from __future__ import annotations
