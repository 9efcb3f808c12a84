"""Column generation on the LP master, with a valid Lagrangian bound at every iteration.

Each iteration: solve the LP master over the generated columns (highspy; dual simplex warm-started
for small masters, interior point without crossover for large ones), read the duals by block name,
price every (job, pool) at the smoothed duals y = a * y_best + (1 - a) * y_LP (Wentges smoothing;
a falls back to 0 when the smoothed point finds nothing that improves the LP), update the bound
L(y) (valid for any y <= 0), and add to the live LP each job's best column and its best column in
another pool when their reduced cost against the LP's duals is negative. Columns whose reduced
cost exceeds the current gap are dropped when the master grows beyond a size limit.

Stops when (z_LP - best bound) <= tol * |z_LP|, when nothing improving is found, or on time.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from carbonplan.planner.columns import ColumnSet
from carbonplan.planner.duals import Duals
from carbonplan.planner.lns import column_reduced_costs
from carbonplan.planner.master import LiveLP, LPSolution, RowLayout
from carbonplan.planner.prepare import Prepared
from carbonplan.planner.pricing import Pricer, PricingResult
from carbonplan.planner.result import Termination


@dataclass
class CGResult:
    """Outcome of column generation."""

    duals: Duals              # duals of the best bound
    bound: float              # best Lagrangian bound (valid lower bound on the optimum)
    lp_objective: float       # last LP master objective (upper bound on the LP optimum)
    lp: LPSolution | None     # last LP solution
    pricing: PricingResult | None  # pricing at the best duals
    iterations: int = 0
    seconds: float = 0.0
    lp_seconds: float = 0.0
    history: list[tuple[float, float]] = field(default_factory=list)  # (bound, LP) per iter
    live: LiveLP | None = None  # the master, when it holds columns its last LP has not seen
    method: str = "simplex"     # ... and the method its next LP would use


def add_priced_columns(pricer: Pricer, res: PricingResult, cols: ColumnSet, jobs: np.ndarray,
                       pools: np.ndarray) -> np.ndarray:
    """Materialize the cheapest column of each (job, pool) in `res` into `cols`; indices (N,)."""
    prep = pricer.prep
    if len(jobs) == 0:
        return np.zeros(0, dtype=np.int64)
    indptr, slots = pricer.columns(res, jobs, pools)
    return cols.add(prep.inst, prep.cc, jobs, pools, indptr, slots)


def best_pairs(res: PricingResult, n_pools: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Each job's cheapest pool and (if n_pools > 1) its next cheapest pools, finite only.

    Returns:
        (jobs (N,), pools (N,)).
    """
    rc = res.pair_rc
    k = min(n_pools, rc.shape[1])
    order = np.argsort(rc, axis=1)[:, :k]
    jobs = np.repeat(np.arange(rc.shape[0]), k)
    pools = order.ravel()
    ok = np.isfinite(rc[jobs, pools]) & res_active(res)[jobs]
    return jobs[ok], pools[ok]


def res_active(res: PricingResult) -> np.ndarray:
    """Jobs that are priced (finite job_rc and not frozen)."""
    return np.isfinite(res.job_rc)


def column_generation(prep: Prepared, pricer: Pricer, cols: ColumnSet, initial: np.ndarray,
                      start: Duals, start_bound: float, *, time_limit: float, tol: float = 2e-4,
                      max_iter: int = 200, smoothing: float = 0.5, ipm_from: int = 4000,
                      max_cols_per_job: float = 12.0, grace: float = 0.0,
                      on_iteration: Callable[[int, float, float], None] | None = None,
                      on_duals: Callable[[int, Duals], None] | None = None) -> CGResult:
    """Column generation from columns `initial` of `cols` and duals `start` (see module doc).

    Args:
        prep: the prepared instance.
        pricer: prices every (job, pool) of the free jobs.
        cols: the column pool (grows).
        initial: indices of columns to start the LP master with.
        start: duals to smooth towards at first (e.g. from the Lagrangian ascent).
        start_bound: L(start).
        time_limit: seconds; no LP starts after them.
        grace: seconds beyond `time_limit` that an LP started before it may run to finish;
            an LP that the last one's time says would not finish by then is not started.
        tol: stop at (z_LP - bound) <= tol * |z_LP|.
        smoothing: Wentges weight on the best duals.
        ipm_from: use interior point (no crossover) once the master has this many columns.
        max_cols_per_job: drop high reduced-cost columns when the LP grows beyond this average.
        on_iteration: called with (iteration, bound, LP objective).
        on_duals: called with (iteration, best duals so far) after each iteration.
    """
    t0 = time.perf_counter()
    inst = prep.inst
    jobs_free = np.flatnonzero(prep.free)
    layout = RowLayout(prep, jobs_free)
    lp = LiveLP(prep, layout)
    lp.add_columns(cols, initial)
    best_y, best_L = start.projected(), start_bound
    best_res: PricingResult | None = None
    out = CGResult(duals=best_y, bound=best_L, lp_objective=np.inf, lp=None, pricing=None)
    alpha = smoothing
    it = 0
    sol: LPSolution | None = None
    last_ok: LPSolution | None = None
    last_lp = 0.0
    pending = False  # columns added since the last LP

    def next_method() -> str:
        return "ipm" if len(lp.lp_cols) + len(jobs_free) >= ipm_from else "simplex"

    for it in range(1, max_iter + 1):
        now = time.perf_counter() - t0
        left = time_limit + grace - now
        if now >= time_limit or (grace > 0 and 1.1 * last_lp > left):
            break  # (an LP cut off by its time limit would give nothing for its time)
        method = next_method()
        t_lp = time.perf_counter()
        sol = lp.solve(method=method, time_limit=left)
        pending = False
        if sol.result.termination is Termination.ERROR and method == "ipm":
            # IPX without crossover sometimes stops short of its tolerance (HiGHS status
            # "Unknown"; seen on trace instances): the same LP by simplex instead of ending
            # column generation there, with the bound where it was
            left = time_limit + grace - (time.perf_counter() - t0)
            sol = lp.solve(method="simplex", time_limit=left) if left > 0 else sol
        last_lp = time.perf_counter() - t_lp
        out.lp_seconds += last_lp
        if sol.result.termination is not Termination.OPTIMAL:
            sol = last_ok
            break
        last_ok = sol
        z = sol.result.objective
        out.lp_objective = z
        y_lp = sol.duals
        mu = y_lp.mu if y_lp.mu is not None else np.zeros(inst.n_jobs)
        added = 0
        for a in (alpha, 0.0) if alpha > 0 else (0.0,):
            y = Duals(beta=a * best_y.beta + (1 - a) * y_lp.beta,
                      pi=a * best_y.pi + (1 - a) * y_lp.pi,
                      lam=a * best_y.lam + (1 - a) * y_lp.lam)
            res = pricer.price(y)
            if res.lagrangian > best_L:
                best_y, best_L, best_res = res.duals.copy(), res.lagrangian, res
            jobs, pools = best_pairs(res, 2)
            idx = add_priced_columns(pricer, res, cols, jobs, pools)
            rc_lp = column_reduced_costs(prep, cols, idx, y_lp) - mu[cols.job[idx]]
            new = idx[rc_lp < -1e-7 * max(1.0, abs(z) / max(len(jobs_free), 1))]
            new = np.setdiff1d(new, lp.lp_cols)
            if new.size:
                lp.add_columns(cols, new)
                added, pending = new.size, True
                break
            alpha = alpha * 0.5 if a > 0 else alpha
        out.history.append((best_L, z))
        if on_iteration:
            on_iteration(it, best_L, z)
        if on_duals:
            on_duals(it, best_y)
        if added == 0 or z - best_L <= tol * max(abs(z), 1e-9):
            break
        if len(lp.lp_cols) > max_cols_per_job * max(len(jobs_free), 1):
            rc_all = column_reduced_costs(prep, cols, lp.lp_cols, y_lp) - mu[cols.job[lp.lp_cols]]
            x_now = np.zeros(len(lp.lp_cols))
            x_now[:len(sol.x_cols)] = sol.x_cols
            keep = (x_now > 1e-9) | (rc_all <= max(z - best_L, 0.0))
            lp.drop_columns(lp.lp_cols[keep])
    if best_res is None:
        best_res = pricer.price(best_y)
        if best_res.lagrangian > best_L:
            best_L = best_res.lagrangian
    out.duals, out.bound, out.lp, out.pricing = best_y, best_L, sol, best_res
    if sol is not None and pending:  # columns priced in, not yet solved
        out.live, out.method = lp, next_method()
    out.iterations = it
    out.seconds = time.perf_counter() - t0
    return out
