"""Capacity-aware greedy placement: jobs in a given order each take their cheapest column that
still fits the residual pool capacity, site power cap and carbon budget.

Used by the greedy spatio-temporal policy (plain objective, arrival order), by the planner's
dual-priced greedy (reduced costs at the best duals, unplaced jobs moved to the front and re-run)
and by the repair step of the large-neighbourhood search. The loop is over jobs; every check inside
is vectorized over the job's pools and starts.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbonplan.planner.columns import ColumnSet, Schedule, contiguous_slots
from carbonplan.planner.prepare import Prepared, usage_of
from carbonplan.planner.pricing import DenseCandidates

EPS = 1e-9


@dataclass(eq=False)
class Residual:
    """What is left of the coupling resources: pool units, site facility kW, tCO2e."""

    cap: np.ndarray     # float (P, T); inf = unbounded
    power: np.ndarray   # float (S, T); inf = no cap
    budget: float       # tCO2e; inf = no budget

    @classmethod
    def of(cls, prep: Prepared, sched: Schedule | None = None,
           t_co2e: float = 0.0) -> Residual:
        """Residual of the prepared instance after the placements of `sched` (if given)."""
        cap = prep.cap.copy()
        power = prep.power_cap.copy()
        if sched is not None:
            units, kw = usage_of(prep.inst, prep.cc, sched)
            cap -= units
            power -= kw
        return cls(cap=cap, power=power, budget=prep.budget_t - t_co2e)

    def take(self, prep: Prepared, j: int, p: int, slots: np.ndarray, t_co2e: float,
             sign: float = 1.0) -> None:
        """Use (sign 1) or give back (sign -1) the resources of job j on pool p over slots."""
        self.cap[p, slots] -= sign * prep.cc.units[j, p]
        s = prep.inst.site[p]
        self.power[s, slots] -= sign * prep.cc.facility_kw[j, p]
        self.budget -= sign * t_co2e

    def fits(self, prep: Prepared, j: int, p: int, slots: np.ndarray, t_co2e: float) -> bool:
        """Whether job j fits on pool p over slots."""
        if np.any(self.cap[p, slots] < prep.cc.units[j, p] - EPS):
            return False
        if np.any(self.power[prep.inst.site[p], slots] < prep.cc.facility_kw[j, p] - EPS):
            return False
        return t_co2e <= self.budget + EPS


def run_columns(prep: Prepared, cols: ColumnSet, jobs: np.ndarray, pool: np.ndarray,
                start: np.ndarray) -> np.ndarray:
    """The columns (added to `cols`) of contiguous runs given as pool and first slot per job;
    -1 where the pool is -1 (unplaced)."""
    new = np.full(len(jobs), -1, np.int64)
    on = pool >= 0
    mj, mp = jobs[on], pool[on]
    indptr, slots = contiguous_slots(start[on], prep.inst.duration_slots[mj, mp])
    new[on] = cols.add(prep.inst, prep.cc, mj, mp, indptr, slots)
    return new


def size_order(prep: Prepared, cand: DenseCandidates) -> np.ndarray:
    """The free jobs by decreasing size (unit-slots) per candidate start: big jobs with few
    options first, the order the dual-priced greedy places them in."""
    inst = prep.inst
    free = np.flatnonzero(prep.free)
    size = np.where(inst.eligible, inst.units * inst.duration_slots, 0).max(axis=1)
    options = np.maximum(np.isfinite(cand.cost).sum(axis=(1, 2)), 1)
    return free[np.argsort(-(size / options)[free], kind="stable")]


def place_dense(prep: Prepared, cand: DenseCandidates, order: np.ndarray, res: Residual,
                *, limit: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each job in `order` takes its cheapest fitting contiguous candidate by `cand.cost`.

    Args:
        prep: the prepared instance.
        cand: dense candidates (cost used to choose; objective / t for the limit and budget).
        order: int (N,) jobs in placement order.
        res: residual resources, updated in place.
        limit: float (J,) a job stays unplaced if its best fitting objective is not below this
            (the unplanned penalty); None: no limit.

    Returns:
        (pool (N,), start (N,)) per job of `order`, -1 where not placed.
    """
    inst, cc = prep.inst, prep.cc
    T = inst.n_slots
    W = cand.cost.shape[2]
    power_on = bool(np.isfinite(res.power).any())
    budget_on = cand.t is not None and np.isfinite(res.budget)
    has = np.isfinite(cand.cost).any(axis=2)  # (J, P)
    out_pool = np.full(len(order), -1, dtype=np.int64)
    out_start = np.full(len(order), -1, dtype=np.int64)
    offs = np.arange(W)
    for i, j in enumerate(order):
        pools = np.flatnonzero(has[j])
        if pools.size == 0:
            continue
        f = int(cand.first[j])
        n = cand.n[j, pools]
        hi = min(T, f + W + int(n.max()))
        u = cc.units[j, pools][:, None]
        bad = res.cap[pools, f:hi] < u - EPS
        if power_on:
            bad |= res.power[inst.site[pools], f:hi] < cc.facility_kw[j, pools][:, None] - EPS
        cb = np.zeros((len(pools), hi - f + 1), dtype=np.int32)
        np.cumsum(bad, axis=1, out=cb[:, 1:])
        e = np.minimum(offs[None, :] + n[:, None], hi - f)
        s = np.minimum(offs, hi - f)[None, :]
        viol = np.take_along_axis(cb, e, axis=1) - np.take_along_axis(
            cb, np.broadcast_to(s, e.shape), axis=1)
        c = np.where(viol == 0, cand.cost[j, pools], np.inf)
        if budget_on:
            c = np.where(cand.t[j, pools] <= res.budget + EPS, c, np.inf)
        k = int(np.argmin(c))
        if not np.isfinite(c.flat[k]):
            continue
        pi, off = divmod(k, W)
        p = int(pools[pi])
        if limit is not None and not cand.objective[j, p, off] < limit[j]:
            continue
        start = f + off
        slots = np.arange(start, start + int(n[pi]))
        res.take(prep, int(j), p, slots, float(cand.t[j, p, off]) if budget_on else 0.0)
        out_pool[i] = p
        out_start[i] = start
    return out_pool, out_start


def place_columns(prep: Prepared, cols: ColumnSet, cand_ptr: np.ndarray, cand_idx: np.ndarray,
                  order: np.ndarray, res: Residual) -> np.ndarray:
    """Each job in `order` takes the first of its candidate columns that fits.

    Args:
        cand_ptr: int (J+1,) CSR offsets of each job's candidates in `cand_idx`.
        cand_idx: int (K,) column indices into `cols`, in order of preference per job.

    Returns:
        int (N,) chosen column per job of `order`, -1 where none fits.
    """
    inst, cc = prep.inst, prep.cc
    power_on = bool(np.isfinite(res.power).any())
    budget_on = np.isfinite(res.budget)
    out = np.full(len(order), -1, dtype=np.int64)
    lengths = np.diff(cols.indptr)
    for i, j in enumerate(order):
        cands = cand_idx[cand_ptr[j]:cand_ptr[j + 1]]
        if cands.size == 0:
            continue
        counts = lengths[cands]
        take = np.repeat(cols.indptr[:-1][cands], counts) + (
            np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        slots = cols.slots[take]
        pool = np.repeat(cols.pool[cands], counts)
        need = np.repeat(cc.units[j, cols.pool[cands]], counts)
        ok_slot = res.cap[pool, slots] >= need - EPS
        if power_on:
            need_kw = np.repeat(cc.facility_kw[j, cols.pool[cands]], counts)
            ok_slot &= res.power[inst.site[pool], slots] >= need_kw - EPS
        starts = np.cumsum(counts) - counts
        ok = np.logical_and.reduceat(ok_slot, starts) if ok_slot.size else np.zeros(0, bool)
        if budget_on:
            ok &= cols.t_co2e[cands] <= res.budget + EPS
        hit = np.flatnonzero(ok)
        if hit.size == 0:
            continue
        c = int(cands[hit[0]])
        res.take(prep, int(j), int(cols.pool[c]), cols.column_slots(c), float(cols.t_co2e[c]))
        out[i] = c
    return out


def best_fit(prep: Prepared, cand: DenseCandidates, j: int, res: Residual, *,
             objective: bool = False, score: np.ndarray | None = None
             ) -> tuple[float, int, int]:
    """Cheapest contiguous candidate of job j that fits `res`, by `cand.cost` (or by
    `cand.objective` when `objective`, or by `score` (P, W), job j's own prices, when given).

    Returns:
        (cost, pool, start); cost is inf and pool -1 when nothing fits.
    """
    inst, cc = prep.inst, prep.cc
    T = inst.n_slots
    W = cand.cost.shape[2]
    row = score if score is not None else (cand.objective if objective else cand.cost)[j]
    pools = np.flatnonzero(np.isfinite(row).any(axis=1))
    if pools.size == 0:
        return np.inf, -1, -1
    f = int(cand.first[j])
    n = cand.n[j, pools]
    hi = min(T, f + W + int(n.max()))
    bad = res.cap[pools, f:hi] < cc.units[j, pools][:, None] - EPS
    if np.isfinite(res.power).any():
        bad |= res.power[inst.site[pools], f:hi] < cc.facility_kw[j, pools][:, None] - EPS
    cb = np.zeros((len(pools), hi - f + 1), dtype=np.int32)
    np.cumsum(bad, axis=1, out=cb[:, 1:])
    offs = np.arange(W)
    e = np.minimum(offs[None, :] + n[:, None], hi - f)
    s = np.broadcast_to(np.minimum(offs, hi - f)[None, :], e.shape)
    viol = np.take_along_axis(cb, e, axis=1) - np.take_along_axis(cb, s, axis=1)
    c = np.where(viol == 0, row[pools], np.inf)
    if cand.t is not None and np.isfinite(res.budget):
        c = np.where(cand.t[j, pools] <= res.budget + EPS, c, np.inf)
    k = int(np.argmin(c))
    if not np.isfinite(c.flat[k]):
        return np.inf, -1, -1
    pi, off = divmod(k, W)
    return float(c.flat[k]), int(pools[pi]), f + off
