"""Concrete models for the tests, one module per part of keel (no migrations: synced)."""

from __future__ import annotations

from tests.testapp.models import (  # noqa: F401
    fixtures,
    fixtures_formats,
    mixins_core,
    mixins_misc,
    site,
    tokens,
)
