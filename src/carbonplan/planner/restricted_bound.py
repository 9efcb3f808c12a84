"""A bound beyond the LP: the integer master restricted by reduced cost, pausable jobs relaxed.

On small instances with tight pools (the demo: 40 jobs, 8-GPU pools) the LP master is far below
the integer optimum (8% on the demo), and the completion step cannot prove optimality because a
gap that wide lets through hundreds of thousands of pausable columns. But the reduced-cost
argument of the completion still holds: any plan cheaper than the incumbent uses, for every
job, only columns whose reduced cost is within `delta = incumbent - L(y)` of the job's minimum
(docs/model.md). So the integer master over those columns is exact for such plans, and relaxing
part of it keeps a valid lower bound:

- contiguous columns within `delta`: binary, exactly as in the completion;
- a pausable (job, pool) pair within `delta`: one binary variable per slot of its window, each
  worth 1/n of the job's assignment (so n slots, anywhere in the window, make one placement),
  costing that slot's share of any column (its $ and carbon times 1 + rework, no move penalty).
  A real run is charged only `final_share` of its last slot, which may be any of them, so each
  slot variable also takes 1/n of the most that can come off a last slot of the window (a
  one-slot job: exactly its final share of the slot; tCO2e: every slot at its final share).
  A real pausable column maps onto n of them (its work slots) at no more cost and no more
  capacity, power or carbon: segments, pauses and resume slots are what is relaxed. So the
  relaxation contains every plan cheaper than the incumbent. (Continuous slot variables gave
  189.4 on the demo, binary ones 197.3: its optimum, proved in 3.9 s.)

The bound is min(incumbent, the MIP's dual bound): HiGHS's dual bound is valid at any stop.
`restricted_plan` solves the same master without the relaxed part (pausable jobs keep their
contiguous columns): a real plan, often better than the search finds (on the demo, 197.3 in
0.8 s where 19 s of search reached 200.9).

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import numpy as np

from carbonplan.planner.backends import Backend, get_backend
from carbonplan.planner.columns import ColumnSet, contiguous_slots, price_columns
from carbonplan.planner.duals import Duals
from carbonplan.planner.lns import Incumbent
from carbonplan.planner.master import RowLayout, build_master
from carbonplan.planner.prepare import Prepared
from carbonplan.planner.pricing import Pricer, PricingResult
from carbonplan.planner.result import SolveResult


def within_gap(prep: Prepared, pricer: Pricer, cols: ColumnSet, incumbent: float,
               duals: Duals, pricing: PricingResult, *, max_columns: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """Contiguous columns within the gap (added to `cols`), pausable pairs within it, delta.

    `duals` are those of `pricing`; delta = incumbent - L(y) is L(y)'s own gap (a bound from
    elsewhere says nothing about reduced costs at y). None, with nothing added, when there are
    more than `max_columns` contiguous columns.
    """
    inst = prep.inst
    delta = incumbent - pricing.lagrangian
    m = pricing.job_rc
    dense = pricer.dense(duals)
    pick = np.isfinite(dense.cost) & (dense.cost - m[:, None, None] <= delta + 1e-9)
    if max_columns is not None and int(pick.sum()) > max_columns:
        return None
    jj, pp, kk = np.nonzero(pick)
    indptr, slots = contiguous_slots(dense.first[jj] + kk, inst.duration_slots[jj, pp])
    exact = cols.add(inst, prep.cc, jj, pp, indptr, slots)
    pairs_j, pairs_p = np.nonzero(inst.pausable[:, None] & inst.eligible & prep.free[:, None]
                                  & np.isfinite(pricing.pair_rc)
                                  & (pricing.pair_rc - m[:, None] <= delta + 1e-9))
    return exact, pairs_j, pairs_p, delta


def solve_over(prep: Prepared, cols: ColumnSet, inc: Incumbent, which: np.ndarray,
               backend: Backend, *, time_limit: float, rel_gap: float) -> SolveResult:
    """The integer master over columns `which` (which must hold the incumbent's), warm-started
    from the incumbent; a better answer is adopted into `inc`."""
    jobs = np.flatnonzero(prep.free)
    layout = RowLayout(prep, jobs)
    master = build_master(prep, cols, which, layout, integer=True)
    pos = np.full(len(cols), -1, dtype=np.int64)
    pos[which] = np.arange(len(which))
    x0 = np.zeros(master.n_vars)
    cur = inc.chosen[jobs]
    x0[pos[cur[cur >= 0]]] = 1.0
    x0[len(which) + np.flatnonzero(cur < 0)] = 1.0
    res = backend.solve(master, time_limit=time_limit, rel_gap=rel_gap, warm_start=x0)
    if res.has_solution and res.objective < inc.objective - 1e-9:
        x = np.asarray(res.solution)
        on = np.flatnonzero(x[:len(which)] > 0.5)
        new = np.full(len(jobs), -1, dtype=np.int64)
        new[layout.job_row[cols.job[which[on]]]] = which[on]
        inc.set_jobs(jobs, new)
    return res


def restricted_plan(prep: Prepared, cols: ColumnSet, inc: Incumbent, exact: np.ndarray, *,
                    time_limit: float) -> bool:
    """The integer master over `exact` and the incumbent's columns, by HiGHS; adopts a better
    plan into `inc`. Returns whether it did."""
    before = inc.objective
    which = np.unique(np.concatenate([exact, inc.chosen[inc.chosen >= 0]]))
    solve_over(prep, cols, inc, which, get_backend("highs"), time_limit=time_limit,
               rel_gap=1e-6)
    return inc.objective < before - 1e-9


def restricted_bound(prep: Prepared, cols: ColumnSet, incumbent: float, exact: np.ndarray,
                     pairs_j: np.ndarray, pairs_p: np.ndarray, delta: float, *,
                     time_limit: float, max_columns: int) -> float:
    """A lower bound on the optimum (see the module docstring); -inf when not computed.

    `exact`, `pairs_*` and `delta` come from `within_gap` with the same incumbent objective.
    """
    inst = prep.inst
    if not np.isfinite(delta) or delta < 0 or time_limit <= 0:
        return -np.inf
    width = np.maximum(prep.win.latest_end[pairs_j, pairs_p] - prep.win.earliest[pairs_j], 0)
    if len(exact) + int(width.sum()) > max_columns:
        return -np.inf
    # one single-slot column per slot of each pausable pair's window
    sj = np.repeat(pairs_j, width)
    sp = np.repeat(pairs_p, width)
    offsets = np.arange(int(width.sum())) - np.repeat(np.cumsum(width) - width, width)
    st = (np.repeat(prep.win.earliest[pairs_j], width) + offsets).astype(np.int32)
    relaxed = cols.add(inst, prep.cc, sj, sp, np.arange(len(st) + 1, dtype=np.int64), st)
    which = np.concatenate([exact, relaxed])
    jobs = np.flatnonzero(prep.free)
    layout = RowLayout(prep, jobs)
    master = build_master(prep, cols, which, layout, integer=True)
    k = np.arange(len(exact), len(which))
    n = inst.duration_slots[sj, sp].astype(float)
    master.c[k] = _relaxed_slot_costs(prep, sj, sp, st, width, n)
    job_rows = layout.job_row[sj]
    for var, row, share in zip(k, job_rows, 1.0 / n, strict=True):
        a, b = master.a_start[var], master.a_start[var + 1]
        hit = a + np.flatnonzero(master.a_index[a:b] == row)
        master.a_value[hit] = share
    res = get_backend("highs").solve(master, time_limit=time_limit, rel_gap=1e-6)
    if not np.isfinite(res.bound):
        return -np.inf
    return float(min(incumbent, res.bound))


def _relaxed_slot_costs(prep: Prepared, sj: np.ndarray, sp: np.ndarray, st: np.ndarray,
                        width: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Objective of each slot variable of the relaxation (see the module docstring), (N,)."""
    inst, cc = prep.inst, prep.cc
    full = price_columns(inst, cc, sj, sp, np.arange(len(st) + 1, dtype=np.int64), st,
                         whole_runs=False)
    static = full.objective - full.move_usd
    owner = np.repeat(np.arange(len(width)), width)
    most = np.full(len(width), -np.inf)
    np.maximum.at(most, owner, static)
    unused = 1.0 - cc.final_share[sj, sp]
    return np.where(n == 1, (1.0 - unused) * static, static - unused * most[owner] / n)
