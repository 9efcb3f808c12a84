"""Baseline policies: functions `Instance -> Schedule` (pool -1 = unplanned), registered by name.

All of them keep frozen jobs where they are, take jobs first-come first-served (release, then
index), run them contiguously and respect pool capacity and site power caps. A job that cannot
fit anywhere before its deadline is left unplanned: that is a deadline miss (they never place a
job late). The temporal ones run in the job's home pool (home region, on-demand):

- `run-now`: start at the first slot >= release where the job fits (FIFO).
- `threshold`: start at the first slot where the carbon intensity is at or below the 30th
  percentile of the next 24 hours (or an absolute threshold if given), and the job fits; from its
  latest safe start (deadline - duration) on it is released regardless of carbon, i.e. it takes the
  first fitting start that still meets the deadline (Compute Gardener style).
- `lowest-window`: the contiguous window in [release, deadline) with the least operational
  emissions that fits (Let's Wait Awhile / Carbon Aware SDK style).
- `carbon-time`: GAIA's carbon saving per unit of time: the start s maximizing
  (kg(run now) - kg(s)) / (s - release + duration), i.e. emissions saved per hour of completion
  time; run now when no start saves anything.
- `greedy`: spatio-temporal greedy: in arrival order each job takes its cheapest column (objective:
  $ + carbon price x tCO2e + rework) in any eligible pool, market and start, given what is taken.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from carbonplan.planner.columns import Schedule
from carbonplan.planner.greedy import EPS, Residual, place_dense
from carbonplan.planner.instance import SPOT, Instance
from carbonplan.planner.prepare import Prepared, prepare
from carbonplan.planner.pricing import Pricer
from carbonplan.planner.registry import Registry

Policy = Callable[[Instance], Schedule]
POLICIES: Registry = Registry("policy")


def get_policy(name: str) -> Policy:
    """A policy by name (UnknownNameError lists the valid ones)."""
    return POLICIES.get(name)


def fifo_order(inst: Instance) -> np.ndarray:
    """Free jobs by release, then index."""
    free = np.flatnonzero(inst.fixed_pool < 0)
    return free[np.lexsort((free, inst.release[free]))]


def home_pools(inst: Instance) -> np.ndarray:
    """Each job's run-now pool: `home_pool`, else its first eligible non-spot pool (-1 none)."""
    non_spot = inst.eligible & (inst.market != SPOT)[None, :]
    first = np.where(non_spot.any(axis=1), np.argmax(non_spot, axis=1), -1)
    home = inst.home_pool.astype(np.int64)
    ok = (home >= 0) & inst.eligible[np.arange(inst.n_jobs), np.maximum(home, 0)]
    return np.where(ok, home, first)


def fitting_starts(prep: Prepared, res: Residual, j: int, p: int) -> np.ndarray:
    """bool (T,): starts s where job j fits pool p over [s, s + n) (n = duration on p)."""
    inst, cc = prep.inst, prep.cc
    T = inst.n_slots
    n = int(inst.duration_slots[j, p])
    bad = res.cap[p] < cc.units[j, p] - EPS
    bad |= res.power[inst.site[p]] < cc.facility_kw[j, p] - EPS
    cb = np.zeros(T + 1, dtype=np.int64)
    np.cumsum(bad, out=cb[1:])
    s = np.arange(T)
    e = s + n
    ok = e <= T
    out = np.zeros(T, dtype=bool)
    out[ok] = (cb[e[ok]] - cb[s[ok]]) == 0
    return out


def window_kg(prep: Prepared, j: int, p: int) -> np.ndarray:
    """float (T,): operational kgCO2e of running job j on pool p from each start (inf past T)."""
    inst, cc = prep.inst, prep.cc
    T = inst.n_slots
    n = int(inst.duration_slots[j, p])
    kg = cc.slot_kwh[j, p] * cc.kg_per_kwh[p]
    cum = np.zeros(T + 1)
    np.cumsum(kg, out=cum[1:])
    out = np.full(T, np.inf)
    if n <= T:
        # the last slot is charged its final share only (the run ends inside it)
        out[:T - n + 1] = (cum[n:] - cum[:T - n + 1]
                           - (1.0 - cc.final_share[j, p]) * kg[n - 1:])
    return out


def _temporal_policy(inst: Instance, choose: Callable[[Prepared, int, int, np.ndarray],
                                                      int]) -> Schedule:
    """Home-pool FIFO skeleton: `choose(prep, j, p, fits)` returns a start or -1."""
    prep = prepare(inst)
    res = Residual.of(prep)
    pool = np.where(inst.fixed_pool >= 0, inst.fixed_pool, -1).astype(np.int64)
    start = np.where(inst.fixed_pool >= 0, inst.fixed_start, -1).astype(np.int64)
    home = home_pools(inst)
    for j in fifo_order(inst):
        p = int(home[j])
        if p < 0:
            continue
        fits = fitting_starts(prep, res, int(j), p)
        fits[: max(int(inst.release[j]), 0)] = False
        fits[max(int(inst.deadline_by_pool[j, p]) - int(inst.duration_slots[j, p]) + 1, 0):] = False
        if not fits.any():
            continue
        s = choose(prep, int(j), p, fits)
        if s < 0:
            continue
        n = int(inst.duration_slots[j, p])
        res.take(prep, int(j), p, np.arange(s, s + n), 0.0)
        pool[j], start[j] = p, s
    return _with_frozen(inst, pool, start)


def _with_frozen(inst: Instance, pool: np.ndarray, start: np.ndarray) -> Schedule:
    """Schedule from (pool, start), frozen jobs clipped to the horizon like the planner does."""
    from carbonplan.planner.prepare import frozen_schedule

    free_pool = np.where(inst.fixed_pool >= 0, -1, pool)
    sched = Schedule.from_starts(inst, free_pool, np.where(free_pool >= 0, start, 0))
    fixed = np.flatnonzero(inst.fixed_pool >= 0)
    return sched.replace(fixed, frozen_schedule(inst)) if fixed.size else sched


def _first(fits: np.ndarray) -> int:
    hit = np.flatnonzero(fits)
    return int(hit[0]) if hit.size else -1


@POLICIES.register("run-now")
def run_now(inst: Instance) -> Schedule:
    """FIFO in the home pool at the first slot where the job fits."""
    return _temporal_policy(inst, lambda prep, j, p, fits: _first(fits))


def rolling_percentile(values: np.ndarray, window: int, q: float) -> np.ndarray:
    """q-th percentile of values[t : t + window] for every t (shorter at the end), (T,)."""
    T = values.shape[0]
    idx = np.minimum(np.arange(T)[:, None] + np.arange(window)[None, :], T - 1)
    return np.percentile(values[idx], q, axis=1)


def threshold(inst: Instance, *, ci_threshold: float | None = None, percentile: float = 30.0,
              lookahead_h: float = 24.0) -> Schedule:
    """Start when the carbon intensity is low enough; forced at the latest safe start."""
    window = max(int(round(lookahead_h / inst.slot_h)), 1)
    q = np.stack([rolling_percentile(inst.ci_g_per_kwh[p], window, percentile)
                  for p in range(inst.n_pools)])
    if ci_threshold is not None:
        q = np.full_like(q, float(ci_threshold))

    def choose(prep: Prepared, j: int, p: int, fits: np.ndarray) -> int:
        low = inst.ci_g_per_kwh[p] <= q[p] + 1e-12
        hit = _first(fits & low)
        if hit >= 0:
            return hit
        late = np.flatnonzero(fits)  # forced: as late as still meets the deadline
        return int(late[-1]) if late.size else -1

    return _temporal_policy(inst, choose)


POLICIES.register("threshold")(threshold)


@POLICIES.register("lowest-window")
def lowest_window(inst: Instance) -> Schedule:
    """The fitting window with the least operational emissions before the deadline."""

    def choose(prep: Prepared, j: int, p: int, fits: np.ndarray) -> int:
        kg = np.where(fits, window_kg(prep, j, p), np.inf)
        return int(np.argmin(kg))

    return _temporal_policy(inst, choose)


@POLICIES.register("carbon-time")
def carbon_time(inst: Instance) -> Schedule:
    """GAIA's carbon saving per unit of completion time (see the module docstring)."""

    def choose(prep: Prepared, j: int, p: int, fits: np.ndarray) -> int:
        n = int(inst.duration_slots[j, p])
        r = int(inst.release[j])
        kg = window_kg(prep, j, p)
        now = _first(fits)
        saving = kg[now] - kg
        per_time = saving / np.maximum(np.arange(inst.n_slots) - r + n, 1)
        per_time = np.where(fits, per_time, -np.inf)
        best = int(np.argmax(per_time))
        return best if per_time[best] > 0 else now

    return _temporal_policy(inst, choose)


@POLICIES.register("greedy")
def greedy(inst: Instance) -> Schedule:
    """Spatio-temporal greedy in arrival order, cheapest fitting column by objective."""
    prep = prepare(inst)
    return greedy_schedule(prep, Pricer(prep))


def greedy_schedule(prep: Prepared, pricer: Pricer) -> Schedule:
    """The greedy policy on an already prepared instance (reuses the pricer's tables)."""
    inst = prep.inst
    cand = pricer.dense(None)
    order = fifo_order(inst)
    res = Residual.of(prep)
    pool, start = place_dense(prep, cand, order, res, limit=prep.penalty)
    P = np.full(inst.n_jobs, -1, dtype=np.int64)
    S = np.full(inst.n_jobs, -1, dtype=np.int64)
    P[order], S[order] = pool, start
    return _with_frozen(inst, P, S)
