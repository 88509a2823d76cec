"""Helpers of the tests of ``keel.models.mixins``."""

from __future__ import annotations

from django.test.utils import CaptureQueriesContext


def updates(queries: CaptureQueriesContext) -> list[str]:
    """The ``UPDATE`` statements among the captured ``queries``."""
    return [q["sql"] for q in queries.captured_queries if q["sql"].upper().startswith("UPDATE")]
