"""The Lagrangian ascent by continuation on tie-broken costs: the bound of large cold instances.

On a large instance with no announced plan, many jobs have many columns of nearly equal cost
(the same price in several regions, neighbouring hours of similar carbon). Each Lagrangian
solution then jumps between them, the subgradient zig-zags and the plain ascent stalls far
below the optimum (measured on 10,000 jobs x 24 pools x 168 slots: 22% below after 40 s). A
re-plan converges fast on the same instance because its stability penalty breaks those ties.

So the ascent runs on costs perturbed towards a reference plan (the greedy policy's, or the
announced plan where a job has one): moving a job off its reference costs `eps` more, for a
decreasing sequence of `eps` (a share of the median job cost), each stage starting from the last
one's duals, and the last stage on the true costs. The perturbation only steers the duals:
every bound reported is `L(y)` of the TRUE costs at those duals (one pricing), valid for the
real problem whatever the perturbation was.

Which reference matters (same instance, 30 s): the first-come greedy plan, which spreads jobs
over the capacity, reached 2.2% below its objective; the dual-priced greedy (largest jobs first)
7%; each job's cheapest column ignoring capacity 19%, no better than no tie-breaking.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

from carbonplan.planner.bound import AscentResult, ascend
from carbonplan.planner.columns import Schedule
from carbonplan.planner.duals import Duals
from carbonplan.planner.prepare import prepare
from carbonplan.planner.pricing import Pricer

# (eps, time share) per stage: eps as a share of the median job's cheapest column, and at most
# that share of the ascent's time (a stage also ends when it reaches the tolerance); the final
# stage, on the true costs, gets the rest.
# Tuned on the 10,000-job daemon instance (docs/benchmarks.md, "How the continuation was tuned").
STAGES: tuple[tuple[float, float], ...] = ((0.08, 0.35), (0.02, 0.2), (0.004, 0.15))


def tie_broken_pricer(pricer: Pricer, reference: tuple[np.ndarray, np.ndarray],
                      eps: float) -> Pricer:
    """A pricer whose columns cost `eps` more when they move a job off its `reference` (pool,
    start); jobs with an announced placement keep it as their reference, with their stability
    penalty plus `eps`."""
    inst = pricer.prep.inst
    announced = inst.prev_pool >= 0
    pool = np.where(announced, inst.prev_pool, reference[0]).astype(np.int32)
    start = np.where(announced, inst.prev_start, reference[1]).astype(np.int32)
    move = np.where(announced, inst.move_penalty_usd, 0.0) + eps
    tb = dataclasses.replace(inst, prev_pool=pool, prev_start=start,
                             move_penalty_usd=np.where(pool >= 0, move, 0.0))
    return Pricer(prepare(tb))


def ascend_by_continuation(pricer: Pricer, start: Duals, target: float, reference: Schedule, *,
                           time_limit: float, tol: float, alpha: float = 0.3,
                           stages: Sequence[tuple[float, float]] = STAGES,
                           on_iteration: Callable[[int, float, float], None] | None = None,
                           stall: tuple[int, float] | None = None) -> AscentResult:
    """`ascend` through the tie-broken stages, then on the true costs (see the module docstring).

    Each perturbed stage may use at most its share of `time_limit`; the true stage gets the rest,
    and `stall` (see `ascend`) may end it sooner (the perturbed stages steer; they are not cut).
    The result's `bound`, `duals` and `pricing` are the best of the TRUE Lagrangian over the
    stages' ends.
    """
    t0 = time.perf_counter()
    prep = pricer.prep
    zero = pricer.price(Duals.zeros(prep.inst.n_pools, len(prep.inst.site_names),
                                    prep.inst.n_slots))
    free = prep.free & np.isfinite(zero.job_rc)
    scale = float(np.median(zero.job_rc[free])) if free.any() else 0.0
    best_res = pricer.price(start)
    ref = (reference.pool, reference.start)
    best_y, best_bound = start, best_res.lagrangian
    y, iterations, history = start, 0, [best_bound]

    def left() -> float:
        return time_limit - (time.perf_counter() - t0)

    def report(it: int, value: float, _stage_best: float) -> None:
        if on_iteration is not None:  # perturbed values are not bounds: report the true best
            on_iteration(iterations + it, value, best_bound)

    plan = [(s * scale, share) for s, share in stages if s * scale > 0] + [(0.0, 1.0)]
    for eps, share in plan:
        if left() <= 0:
            break
        stage = tie_broken_pricer(pricer, ref, eps) if eps > 0 else pricer
        asc = ascend(stage, y, target, max_iter=1_000_000,
                     time_limit=max(min(left(), share * time_limit), 0.0),
                     tol=tol, alpha=alpha, on_iteration=report,
                     stall=stall if eps == 0 else None)
        iterations += asc.iterations
        y = asc.duals
        res = asc.pricing if eps == 0 else pricer.price(y)
        history.append(res.lagrangian)
        if res.lagrangian > best_bound:
            best_y, best_bound, best_res = y.copy(), res.lagrangian, res
    return AscentResult(duals=best_y, bound=best_bound, iterations=iterations,
                        seconds=time.perf_counter() - t0, avg_units=np.zeros(0),
                        history=history, pricing=best_res)
