"""keel's concrete models (app label ``keel``).

The save-behaviour mixins live in [`keel.models.mixins`][keel.models.mixins].
"""

from __future__ import annotations

from keel.models.action_token import ActionCounter, ActionToken
from keel.models.fixture_row_state import FixtureRowState
from keel.models.fixture_state import FixtureState
from keel.models.site_version import SiteVersion

__all__ = ["ActionCounter", "ActionToken", "FixtureRowState", "FixtureState", "SiteVersion"]
