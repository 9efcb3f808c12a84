"""Fixtures of the planner tests (helpers live in planner_helpers.py)."""

from __future__ import annotations

import pytest
from planner_helpers import tiny_instance

from carbonplan.planner.instance import Instance


@pytest.fixture
def tiny() -> Instance:
    return tiny_instance(1)
