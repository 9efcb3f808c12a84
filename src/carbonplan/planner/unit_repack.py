"""Re-place every unit job at once by rounding the LP of their sub-master.

Why: a job that takes one unit on every pool it may use (a 1-GPU job, a one-slice MIG job) is an
interval of height one, and the LP of "all unit jobs free, every other job fixed" is then nearly
integral. Rounding it realizes most of what it promises in a fraction of a second, where the
search's small sub-MIPs reach the same plans only after many moves (on 1,000 x 12 x 72 about half
the jobs are 1-GPU jobs and carry most of the distance to the Lagrangian minimum; measured in
docs/benchmarks.md). Larger jobs do not round this way: their sub-LPs promise several hundred $
that integral packings cannot take (12-GPU pools, 4- and 8-GPU jobs), and with the capacity
rounded down to their size they promise little (measured), so they stay with the search.

The rounding loses unevenly: of a sub-LP promising $84-131 on 1,000 x 12 x 72, it kept $0-111
(ten plans), nearly all of the loss on the 9-14 fractional jobs that none of their LP columns
fitted (placed far from them, or nowhere). When the rounded plan is not cheaper, an optional
`repair` (the solver passes a short run of the compiled moves) starts from it; the moves put
those few jobs back near their cheapest runs and the plan keeps most of the promise (measured in
docs/benchmarks.md).

The move never makes the plan worse: if the rounded plan (after a small repair of jobs that no
longer fit, and the `repair`) is not cheaper, the incumbent is restored exactly.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np

from carbonplan.planner.backends.highs import to_highs_lp
from carbonplan.planner.columns import contiguous_slots
from carbonplan.planner.duals import Duals
from carbonplan.planner.greedy import best_fit
from carbonplan.planner.highs_threads import new_model, run
from carbonplan.planner.lns import LNS, Move
from carbonplan.planner.prepare import Prepared
from carbonplan.planner.pricing import DenseCandidates


@dataclass
class RepackStats:
    """What one repack did."""

    jobs: int = 0          # unit jobs freed
    promise: float = 0.0   # $ the sub-LP says could be saved at most
    gain: float = 0.0      # $ saved (0 when the incumbent was kept)
    repaired: int = 0      # jobs that fitted nowhere after rounding and went to a sub-MIP
    moved: bool = False    # the rounded plan was not cheaper and `repair` ran from it
    seconds: float = 0.0


def unit_jobs(lns: LNS) -> np.ndarray:
    """Free, non-pausable jobs that take exactly one unit on every pool they may use."""
    prep = lns.prep
    inst = prep.inst
    one = np.where(inst.eligible, np.isclose(prep.cc.units, 1.0), True).all(axis=1)
    return np.flatnonzero(prep.free & ~inst.pausable & inst.eligible.any(axis=1) & one)


def relaxation(move: Move, time_limit: float) -> tuple[np.ndarray, float, np.ndarray] | None:
    """LP relaxation of a sub-master (interior point, then crossover to a vertex).

    Returns:
        (x (n,), objective, row duals (m,)), or None when the LP did not end optimal.
    """
    lp = to_highs_lp(move.master)
    lp.integrality_ = []
    h = new_model()
    h.setOptionValue("solver", "ipm")
    h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
    h.passModel(lp)
    run(h)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    sol = h.getSolution()
    return (np.asarray(sol.col_value), float(h.getInfo().objective_function_value),
            np.asarray(sol.row_dual))


def repack_unit_jobs(lns: LNS, *, time_limit: float, min_jobs: int | None = None,
                     repair: Callable[[LNS, float], object] | None = None) -> RepackStats:
    """Free every unit job, solve their sub-master's LP and round it (see the module docstring).

    Rounding: jobs by decreasing largest LP value; each takes its first fitting LP column (by
    decreasing value), else its previous column, else its cheapest fitting column priced at the
    sub-LP's duals. Jobs left without a place get one sub-MIP with the jobs in their way. The
    result is adopted only if cheaper than the incumbent.

    Args:
        lns: the search (its incumbent, candidates and sub-MIP backend are used and updated).
        time_limit: seconds for the repack: its LP, then `repair` within what the LP left
            (the rounding's sub-MIP uses the search's own limit).
        min_jobs: skip when fewer unit jobs (default: the search's neighbourhood size, which a
            single sub-MIP already covers).
        repair: called as repair(lns, seconds left) when the rounded plan is not cheaper than
            the incumbent was; improves `lns`'s incumbent in place within those seconds.
    """
    t0 = time.perf_counter()
    stats = RepackStats()
    jobs = unit_jobs(lns)
    stats.jobs = int(jobs.size)
    if jobs.size <= (lns.max_jobs if min_jobs is None else min_jobs):
        return stats
    lns.focus = None
    move = lns.build(jobs)
    lp = relaxation(move, time_limit) if move is not None else None
    if lp is None:
        stats.seconds = time.perf_counter() - t0
        return stats
    x_all, z, row_dual = lp
    before_sub = float(move.master.c @ move.x0)
    stats.promise = max(before_sub - z, 0.0)
    inc = lns.inc
    before = inc.objective
    if stats.promise <= 1e-6 * max(1.0, abs(before)):
        stats.seconds = time.perf_counter() - t0
        return stats
    snapshot = inc.chosen.copy()
    k = len(move.which)
    x = x_all[:k]
    duals = move.master.duals_from_rows(row_dual, lns.prep.n_jobs).projected()
    _round(lns, move, x, duals, snapshot)
    left = np.asarray([j for j in move.jobs if inc.chosen[j] < 0], dtype=np.int64)
    stats.repaired = int(left.size)
    if left.size:
        lns._refresh()
        lns.focus = None
        lns.improve(_around(lns, left))
    cheaper = before - 1e-7 * max(1.0, abs(before))  # what a kept rounding must beat
    time_left = time_limit - (time.perf_counter() - t0)
    if repair is not None and inc.objective >= cheaper and time_left > 0:
        repair(lns, time_left)
        stats.moved = True
    if inc.objective < cheaper:
        stats.gain = before - inc.objective
    else:
        changed = np.flatnonzero(inc.chosen != snapshot)
        inc.set_jobs(changed, np.full(changed.size, -1, dtype=np.int64))
        inc.set_jobs(changed, snapshot[changed])
    lns._refresh()
    stats.seconds = time.perf_counter() - t0
    return stats


def _round(lns: LNS, move: Move, x: np.ndarray, duals: Duals, snapshot: np.ndarray) -> None:
    """Place the freed jobs of `move` from the LP values `x` of its columns (in place)."""
    prep, cols, inc, dense = lns.prep, lns.cols, lns.inc, lns.dense
    inst, cc = prep.inst, prep.cc
    inc.set_jobs(move.jobs, np.full(move.jobs.size, -1, dtype=np.int64))
    col_job = cols.job[move.which]
    best_x = np.zeros(prep.n_jobs)
    np.maximum.at(best_x, col_job, x)
    order = move.jobs[np.argsort(-best_x[move.jobs], kind="stable")]
    by_job = np.argsort(col_job, kind="stable")
    bounds = np.searchsorted(col_job[by_job], order), np.searchsorted(col_job[by_job], order,
                                                                      side="right")
    prices = _price_tables(prep, duals) if dense is not None else None
    for j, lo, hi in zip(order, *bounds, strict=True):
        j = int(j)
        mine = by_job[lo:hi]
        mine = mine[x[mine] > 1e-6]
        tries = list(move.which[mine[np.argsort(-x[mine], kind="stable")]])
        if snapshot[j] >= 0:
            tries.append(int(snapshot[j]))
        if _take_first_fitting(lns, j, tries):
            continue
        if prices is None:
            continue
        score = _reduced_costs(prep, dense, j, *prices)
        value, p, s = best_fit(prep, dense, j, inc.res, score=score)
        if p < 0 or not dense.objective[j, p, s - dense.first[j]] < prep.penalty[j]:
            continue
        indptr, slots = contiguous_slots(np.array([s]), np.array([inst.duration_slots[j, p]]))
        c = cols.add(inst, cc, np.array([j]), np.array([p]), indptr, slots)
        inc.set_jobs(np.array([j]), c)


def _take_first_fitting(lns: LNS, j: int, tries: list[int]) -> bool:
    prep, cols, inc = lns.prep, lns.cols, lns.inc
    for c in tries:
        if inc.res.fits(prep, j, int(cols.pool[c]), cols.column_slots(c), float(cols.t_co2e[c])):
            inc.set_jobs(np.array([j]), np.array([c]))
            return True
    return False


def _price_tables(prep: Prepared, duals: Duals) -> tuple[np.ndarray, np.ndarray, float]:
    """Cumulative sums over time of the sub-LP's capacity and power duals, and its budget dual."""
    beta, pi = duals.beta, duals.pi
    cb = np.zeros((beta.shape[0], beta.shape[1] + 1))
    np.cumsum(beta, axis=1, out=cb[:, 1:])
    cp = np.zeros((pi.shape[0], pi.shape[1] + 1))
    np.cumsum(pi, axis=1, out=cp[:, 1:])
    lam = float(duals.lam) if np.isfinite(prep.budget_t) else 0.0
    return cb, cp, lam


def _reduced_costs(prep: Prepared, dense: DenseCandidates, j: int, cb: np.ndarray,
                   cp: np.ndarray, lam: float) -> np.ndarray:
    """Job j's contiguous columns (P, W) priced at the sub-LP's duals."""
    inst, cc = prep.inst, prep.cc
    T = inst.n_slots
    W = dense.objective.shape[2]
    start = np.minimum(dense.first[j] + np.arange(W), T)[None, :]
    end = np.minimum(start + dense.n[j][:, None], T)
    rows = np.arange(cb.shape[0])[:, None]
    site = inst.site[:, None].astype(np.int64)
    rc = (dense.objective[j] - cc.units[j][:, None] * (cb[rows, end] - cb[rows, start])
          - cc.facility_kw[j][:, None] * (cp[site, end] - cp[site, start]))
    if lam and dense.t is not None:
        rc = rc - lam * dense.t[j]
    return rc


def _around(lns: LNS, jobs: np.ndarray) -> np.ndarray:
    """`jobs` plus (up to the search's neighbourhood size) the free jobs in the way of their
    three cheapest candidates."""
    near = lns.in_the_way(jobs, per_job=3)
    rest = np.setdiff1d(near[lns.prep.free[near]], jobs)
    room = max(lns.max_jobs - jobs.size, 0)
    if rest.size > room:
        rest = lns.rng.choice(rest, room, replace=False)
    return np.concatenate([jobs, rest])
