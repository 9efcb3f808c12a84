"""Fixtures of the planner tests (helpers live in planner_helpers.py)."""

from __future__ import annotations

import pytest

from carbonplan.planner.instance import Instance

from .planner_helpers import tiny_instance


@pytest.fixture
def tiny() -> Instance:
    return tiny_instance(1)
