"""Column generation's clock: an LP started before the time limit may finish within the grace;
one that the last LP's time says would not finish is not started (a cut-off LP gives nothing
for its time). The LPs are real; only the clock is simulated, so the test does not depend on
the machine's speed."""

from __future__ import annotations

import numpy as np
import pytest

from carbonplan.planner.cg import column_generation

from .planner_helpers import priced_start, tiny_instance


def run(time_limit: float, grace: float):
    # 40 jobs on 1-2-unit pools: seven iterations before the LP and the bound meet
    prep, pricer, res0, cols, initial = priced_start(
        tiny_instance(8, n_jobs=40, n_pools=3, n_slots=12, capacity=(1, 2)))
    return column_generation(prep, pricer, cols, initial, res0.duals, res0.lagrangian,
                             time_limit=time_limit, grace=grace, tol=1e-9, smoothing=0.0)


def test_an_lp_started_before_the_limit_gets_the_grace_to_finish(clock) -> None:
    clock.lp = 0.4
    out = run(1.0, 0.5)
    # LPs start at 0, 0.4 and 0.8 (before 1.0); the third may run to 1.5, not only to 1.0
    assert len(clock.limits) == 3
    assert clock.limits[2] == pytest.approx(0.7)
    assert out.lp is not None and out.lp_seconds == pytest.approx(1.2)


def test_an_lp_that_would_not_finish_is_not_started(clock) -> None:
    clock.lp = 0.6
    out = run(1.0, 0.2)
    # after the first LP (0 -> 0.6) only 0.6 s are left of 1.2: too little for another 0.6
    assert len(clock.limits) == 1
    assert out.lp is not None and np.isfinite(out.bound)


def test_without_grace_an_lp_starts_until_the_limit_and_gets_what_is_left(clock) -> None:
    clock.lp = 0.6
    run(1.0, 0.0)
    assert len(clock.limits) == 2
    assert clock.limits[1] == pytest.approx(0.4)
