"""Among equally good placements, the earliest: a cost-neutral polish applied after the solve.

When several starts cost the same (a flat carbon signal on an owned pool, say), the optimizer's
choice among them is arbitrary and may sit just before a deadline. Users expect the earliest, and
an earlier finish leaves more room for what goes wrong. `shift_earlier` moves each contiguous,
free job to the earliest start in its own pool where it still fits (capacity, power caps, carbon
budget, spot safety) and whose objective is no higher (to a relative 1e-9). The objective never
rises, so the plan's certificate (bound, gap) still holds. Pausable and frozen jobs stay put.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import numpy as np

from carbonplan.planner.columns import Schedule, contiguous_slots, price_columns
from carbonplan.planner.greedy import EPS, Residual
from carbonplan.planner.prepare import Prepared, schedule_costs

REL_TOL = 1e-9


def shift_earlier(prep: Prepared, sched: Schedule, rel_tol: float = REL_TOL) -> Schedule:
    """`sched` with each movable job at its earliest no-dearer fitting start (see module doc)."""
    inst, cc, win = prep.inst, prep.cc, prep.win
    counts = np.diff(sched.indptr)
    start, end = sched.start, sched.end
    J = sched.n_jobs
    jj = np.arange(J)
    pool = np.maximum(sched.pool, 0)
    contiguous = (sched.pool >= 0) & (end - start == counts) & (
        counts == inst.duration_slots[jj, pool])
    movable = contiguous & prep.free & (start > win.earliest)
    if not movable.any():
        return sched
    per_job = schedule_costs(inst, cc, sched)
    res = Residual.of(prep, sched, t_co2e=float(per_job.t_co2e.sum()))
    new_start = start.copy()
    for j in np.flatnonzero(movable)[np.argsort(start[movable], kind="stable")]:
        p, s, n = int(sched.pool[j]), int(start[j]), int(counts[j])
        lo = int(win.earliest[j])
        old = np.arange(s, s + n)
        t_old = float(per_job.t_co2e[j])
        res.take(prep, j, p, old, t_old, sign=-1.0)
        ok = res.cap[p] >= cc.units[j, p] - EPS
        ok &= res.power[inst.site[p]] >= cc.facility_kw[j, p] - EPS
        bad = np.zeros(inst.n_slots + 1, dtype=np.int64)
        np.cumsum(~ok, out=bad[1:])
        cand = np.arange(lo, s)
        cand = cand[(bad[cand + n] - bad[cand]) == 0]
        if cand.size:
            indptr, slots = contiguous_slots(cand, np.full(cand.size, n))
            c = price_columns(inst, cc, np.full(cand.size, j), np.full(cand.size, p), indptr,
                              slots)
            limit = float(per_job.objective[j]) + rel_tol * abs(float(per_job.objective[j]))
            good = (c.objective <= limit + 1e-12) & (c.t_co2e <= res.budget + EPS)
            if good.any():
                k = int(np.flatnonzero(good)[0])
                new_start[j] = cand[k]
                res.take(prep, j, p, np.arange(cand[k], cand[k] + n), float(c.t_co2e[k]))
                continue
        res.take(prep, j, p, old, t_old)  # stays where it was
    if np.array_equal(new_start, start):
        return sched
    moved = new_start != start
    shifted = Schedule.from_starts(inst, np.where(moved, sched.pool, -1),
                                   np.where(moved, new_start, -1))
    return sched.replace(np.flatnonzero(moved), shifted)
