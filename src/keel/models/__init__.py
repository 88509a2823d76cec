"""keel's concrete models (app label ``keel``).

The save-behaviour mixins live in :mod:`keel.models.mixins`.
"""

from __future__ import annotations

from keel.models.action_token import ActionToken
from keel.models.fixture_row_state import FixtureRowState
from keel.models.fixture_state import FixtureState

__all__ = ["ActionToken", "FixtureRowState", "FixtureState"]
