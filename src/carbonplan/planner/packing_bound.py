"""A lower bound beyond the LP where a few large jobs cannot share a pool.

The LP master lets two 8-GPU jobs run at one half each in the same slots of an 8-GPU pool; no plan
can. When such jobs are few and long, the LP bound sits far below every plan: on trace instances
(Philly job sizes: 990 one-GPU jobs, ten of 4-8 GPUs, pools of 8 and 3 GPUs), the ten large jobs
alone have an LP of 927.6 $ and an optimum of 1,358.6 $, and the whole instance's gap stayed at
8% however long the search ran. With B's integer packing at the LP duals (0.09 s) the bound of
that instance rose from 5,409.7 to 5,757.1 $ (gap 8.1% -> 2.2% at 10 s).

For duals y (<= 0) and any set B of jobs, the Lagrangian with B's capacity use kept as
constraints

    L_B(y) = L(y) - sum_{j in B} job_rc_j(y)
             + min { sum_{j in B} rc(y) x : each j in B on one of its columns or unplanned,
                     B's units <= capacity on every (pool, slot) }

is a lower bound on the optimum, at least L(y): the rows kept are implied by the full capacity
rows (the other jobs use capacity >= 0), and every other term is the Lagrangian's. The inner
minimum is a small integer program over every contiguous column of B's jobs (not only generated
ones); HiGHS's dual bound of it, even when time-limited, keeps the bound valid.

B: free, non-pausable jobs that fill more than half of an eligible pool (two cannot share a slot
there), largest first, up to a number of columns that HiGHS solves in well under a second.

`packing_column_generation` then looks for better duals: an LP master where B's jobs share one
convexity row and each of their columns is a whole packing, the other jobs' columns as usual;
its optimum is max_y L_B(y). Same instance: 5,837.4 $ after 3.2 s (plan 0.99% at 8.1 s).

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import dataclasses
import time

import highspy
import numpy as np

from carbonplan.planner.backends import get_backend
from carbonplan.planner.bound import lagrangian_usage
from carbonplan.planner.columns import ColumnSet, contiguous_slots
from carbonplan.planner.duals import Duals
from carbonplan.planner.lns import column_reduced_costs
from carbonplan.planner.master import LiveLP, RowLayout, build_master
from carbonplan.planner.prepare import Prepared
from carbonplan.planner.pricing import Pricer, PricingResult
from carbonplan.planner.result import SolveResult, Termination

MAX_COLUMNS = 6_000
LARGE = 0.5  # share of a pool above which two such jobs cannot share it


def large_jobs(prep: Prepared) -> np.ndarray:
    """Free, non-pausable jobs that fill more than half of some eligible, capacitated pool,
    by units x slots, largest first."""
    inst = prep.inst
    cap = np.where(np.isfinite(prep.cap), prep.cap, np.inf).max(axis=1)  # (P,)
    big = inst.eligible & np.isfinite(cap)[None, :] & (inst.units > LARGE * cap[None, :])
    jobs = np.flatnonzero(big.any(axis=1) & prep.free & ~inst.pausable)
    size = (inst.units * inst.duration_slots).max(axis=1)[jobs]
    return jobs[np.argsort(-size, kind="stable")]


class PackingOracle:
    """L_B(y) for a fixed set B: the integer master of B's jobs (`build_master`) over every
    allowed start of theirs, with capacity rows only, costed at the reduced costs of y and
    solved by the HiGHS backend. (A subgradient ascent of L_B from the LP duals, one solve per
    step, gained under 0.02% on the trace instances: not used.)"""

    def __init__(self, prep: Prepared, pricer: Pricer, jobs: np.ndarray, *,
                 max_columns: int = MAX_COLUMNS) -> None:
        self.prep = prep
        T = prep.inst.n_slots
        blocks = pricer.block_costs(Duals.zeros(prep.inst.n_pools, len(prep.inst.site_names),
                                                T), jobs)
        # keep whole jobs, largest first, while their allowed starts fit the budget
        per_job = np.zeros(prep.n_jobs, dtype=np.int64)
        for bj, _, _, _, rc in blocks:
            np.add.at(per_job, bj, np.isfinite(rc).sum(axis=1))
        self.jobs = jobs[np.cumsum(per_job[jobs]) <= max_columns]
        kept = np.zeros(prep.n_jobs, dtype=bool)
        kept[self.jobs] = True
        job, pool, start, length = [], [], [], []
        for bj, p, first, n, rc in blocks:
            r, w = np.nonzero(np.isfinite(rc) & kept[bj][:, None])
            job.append(bj[r])
            pool.append(np.full(r.size, p))
            start.append(first[r] + w)
            length.append(n[r])
        self.cols = ColumnSet.empty()
        self.which = np.zeros(0, dtype=np.int64)
        self.master = None
        self.last: SolveResult | None = None  # the last solve (its packing)
        n_starts = sum(len(j) for j in job)
        if n_starts == 0:  # no allowed start at all: each such job is unplanned in L(y) too
            return
        indptr, slots = contiguous_slots(np.concatenate(start), np.concatenate(length))
        self.which = self.cols.add(prep.inst, prep.cc, np.concatenate(job),
                                   np.concatenate(pool), indptr, slots)
        layout = RowLayout(prep, self.jobs, power_rows=np.zeros(prep.power_cap.shape, bool),
                           budget=False)
        self.master = build_master(prep, self.cols, self.which, layout, offset=0.0)

    def evaluate(self, res: PricingResult, time_limit: float) -> float | None:
        """L_B at the duals of `res`; None when HiGHS gives no bound in time."""
        if self.master is None or time_limit <= 0:
            return None
        self.master.c[:self.which.size] = column_reduced_costs(self.prep, self.cols,
                                                               self.which, res.duals)
        out = get_backend("highs").solve(self.master, time_limit=time_limit, rel_gap=1e-4)
        if not np.isfinite(out.bound):
            return None
        self.last = out if out.has_solution else None
        return res.lagrangian - float(res.job_rc[self.jobs].sum()) + out.bound

    def packing_column(self, layout: RowLayout, row: int
                       ) -> tuple[float, np.ndarray, np.ndarray]:
        """The last packing as one column of `layout`'s LP: (objective, rows, values), with 1
        in `row` (B's convexity row) and the packed runs' entries in its other rows."""
        assert self.last is not None and self.last.solution is not None
        on = self.which[np.asarray(self.last.solution)[:self.which.size] > 0.5]
        unplanned = ~np.isin(self.jobs, self.cols.job[on])
        cost = float(self.cols.objective[on].sum() + self.prep.penalty[self.jobs[unplanned]].sum())
        _, index, value = layout.column_entries(self.prep, self.cols, on)
        rows, inv = np.unique(index, return_inverse=True)
        values = np.bincount(inv, weights=value, minlength=rows.size)
        other = rows != row
        return cost, np.r_[row, rows[other]].astype(np.int32), np.r_[1.0, values[other]]


def packing_bound(prep: Prepared, pricer: Pricer, res: PricingResult, *,
                  time_limit: float, max_columns: int = MAX_COLUMNS) -> float | None:
    """L_B at the duals of `res` (see the module docstring); None when no job qualifies, when
    B's cheapest columns already fit side by side (L_B would equal L), or when HiGHS gives no
    bound in time."""
    t0 = time.perf_counter()
    jobs = large_jobs(prep)
    if jobs.size == 0 or time_limit <= 0:
        return None
    only = np.zeros(prep.n_jobs, dtype=bool)
    only[jobs] = True
    units, _, _ = lagrangian_usage(pricer, dataclasses.replace(
        res, job_pool=np.where(only, res.job_pool, -1)))
    if not (units > prep.cap + 1e-9).any():
        return None
    oracle = PackingOracle(prep, pricer, jobs, max_columns=max_columns)
    return oracle.evaluate(res, time_limit - (time.perf_counter() - t0))


def packing_column_generation(prep: Prepared, pricer: Pricer, cols: ColumnSet,
                              support: np.ndarray, res: PricingResult, target: float, *,
                              time_limit: float, tol: float = 1e-3,
                              min_gain: float = 0.1) -> float | None:
    """max_y L_B(y), approached by column generation on an LP master where B's jobs share one
    convexity row and each column of theirs is a whole packing (the last MIP's answer), the
    other jobs as in the LP master. It goes on past the first L_B (at `res`'s duals) only when
    that closed at least `min_gain` of the gap to `target`. Returns the best L_B seen (valid at
    every step); None when no job qualifies. With a power cap or a carbon budget, only the first
    L_B (the master has no such rows yet)."""
    from carbonplan.planner.cg import add_priced_columns, best_pairs

    t0 = time.perf_counter()
    left = lambda: time_limit - (time.perf_counter() - t0)  # noqa: E731
    jobs = large_jobs(prep)
    if jobs.size == 0:
        return None
    oracle = PackingOracle(prep, pricer, jobs)
    big = oracle.jobs
    best = oracle.evaluate(res, left())
    if best is None or oracle.last is None or best - res.lagrangian < min_gain * (
            target - res.lagrangian):
        return best  # packing these jobs is not what the gap lacks: the time is the search's
    if np.isfinite(prep.power_cap).any() or np.isfinite(prep.budget_t):
        return best  # the master below has no power-cap or budget rows (yet)
    rep = int(big[0])
    others = np.setdiff1d(np.flatnonzero(prep.free), big)
    layout = RowLayout(prep, np.union1d(others, [rep]))
    lp = LiveLP(prep, layout)
    row = int(layout.job_row[rep])
    lp.h.changeColCost(row, float(prep.penalty[big].sum()))  # all of B unplanned
    in_b = np.zeros(prep.n_jobs, dtype=bool)
    in_b[big] = True
    lp.add_columns(cols, support[~in_b[cols.job[support]]])

    def add_packing() -> None:
        cost, r, v = oracle.packing_column(layout, row)
        lp.h.addCol(cost, 0.0, highspy.kHighsInf, len(r), r, v)

    add_packing()
    while left() > 0:
        sol = lp.solve(method="ipm", time_limit=left())
        if sol.result.termination is Termination.ERROR and left() > 0:
            sol = lp.solve(method="simplex", time_limit=left())
        if sol.result.termination is not Termination.OPTIMAL:
            break
        z, y = sol.result.objective, sol.duals
        mu = y.mu if y.mu is not None else np.zeros(prep.n_jobs)
        priced = pricer.price(y)
        got = oracle.evaluate(priced, left())
        if got is None:
            break
        best = max(best, got)
        if z - best <= tol * max(abs(z), 1e-9) or target - best <= 0:
            break
        pj, pp = best_pairs(priced, 2)
        keep = ~in_b[pj]
        idx = add_priced_columns(pricer, priced, cols, pj[keep], pp[keep])
        rc = column_reduced_costs(prep, cols, idx, y) - mu[cols.job[idx]]
        new = np.setdiff1d(idx[rc < -1e-7 * max(1.0, abs(z) / max(others.size, 1))],
                           lp.lp_cols)
        added = new.size
        lp.add_columns(cols, new)
        if oracle.last is not None and oracle.last.objective - mu[rep] < -1e-7 * max(1.0,
                                                                                   abs(z)):
            add_packing()
            added += 1
        if added == 0:
            break
    return best
