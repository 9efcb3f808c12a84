"""Compiled local search over every contiguous start: relocations and ejection chains.

The large-neighbourhood search solves a few hundred sub-MIPs in a 10-s plan; most of what they
find is one job moved into a cheaper run by pushing one to three jobs out of its way. These moves
are cheap to try in compiled code (100,000-285,000 a second by one chain on 1,000 x 12 x 72,
by machine), so they run here on arrays:

- relocation: a job takes its cheapest run that fits what the others leave;
- ejection: a job takes a run that does not fit, the jobs in its way on that pool step out (one
  at a time, then as many as it takes, up to `MAX_EJECT`) and each takes its cheapest run that
  fits afterwards (or stays unplanned at its penalty). Only jobs in its way where it falls short
  of capacity or power step out: one that overlaps the run only where it fits could come back
  to its own place at once, so pushing it out tries nothing new. Half the target runs are
  cheaper than the job's present one by objective, half by reduced cost at the search's duals:
  a run cheap by objective in a congested hour rarely clears, one cheap net of the hour's price
  often does (mean gap 1.60% -> 1.50% after 3 s on 1,000 x 12 x 72).

Half the moves start from a job drawn uniformly, half from one drawn by its excess: its run's
reduced cost above its cheapest run's, the share of the gap to the bound that job holds.

A move is kept when the plan gets cheaper or, with a temperature, by the annealing rule; the best
plan seen is the one adopted. The rule's threshold is drawn before the jobs pushed out are placed
again, so each one's scan of its runs stops at the dearest run that could still be accepted;
that and per-pool job lists (the jobs in a run's way) doubled the moves a second. Every run is
checked against pool capacity, site power and the carbon budget, so a plan stays feasible.
Pausable jobs on multi-segment runs and frozen jobs stay where they are (their use is part of
the residual).

With two cores the search stage runs two chains at once, one on each side of a boundary slot:
each chain's moves see the other side's capacity as taken, so the two never share a residual and
each plan they keep is feasible together (jobs whose run spans the boundary stay put). Between
stretches of half a second the two halves merge and the boundary moves (the middle, then a
random slot in the middle third), so jobs cross it over the stretches (1,000 x 12 x 72, 3 s of
search from the same states, seeds 2-3: mean gap 1.29% -> 1.18%, docs/benchmarks.md).

`Background` runs the same moves on a second core while column generation runs on the first
(one HiGHS thread): from the greedy plan at the duals of the iteration whose LP is within 0.5%
of the bound, until column generation ends; the plan then starts from the cheaper of its plan
and the dual-priced greedy's (1,000 x 12 x 72 at 10 s: mean gap 1.35% -> 1.14%).

Compiling the moves takes about 10 s; numba caches the machine code next to this module,
so later processes load it in about 0.3 s. A plan never waits for the compiler: when the cache is
cold, `ready()` says no, the plan searches without these moves, and `warm_up()` compiles them in
a background process for the plans that follow.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numba
import numpy as np

from carbonplan.planner.columns import Schedule
from carbonplan.planner.greedy import Residual, place_dense, run_columns, size_order
from carbonplan.planner.lns import LNS
from carbonplan.planner.prepare import usage_of
from carbonplan.planner.pricing import DenseCandidates

EPS = 1e-9
TOL = 1e-6        # $: a smaller saving is no saving
MAX_EJECT = 6     # jobs pushed out of one target run
BLOCKED = -1e18   # residual capacity of the slots a chain of a split search may not use
DRAW_BY_EXCESS = 0.5  # share of moves whose job is drawn by its excess (else uniformly) ...
EXCESS_FLOOR = 0.05   # ... in proportion to min(excess, EXCESS_CAP) + EXCESS_FLOOR ($)
EXCESS_CAP = 100.0
# where `_Moves.fixed` (the search's arguments after the residuals) holds what a split changes
_MOVABLE, _LISTS = 10, slice(16, 19)
# The helpers the moves call millions of times a second read and write the plan's arrays but
# never allocate or keep one, so they are compiled without numba's reference counting: with it,
# each call paid an atomic increment and decrement per array argument, 45-60% of the search's
# time (perf), and the two chains of a split search contend for the same shared counters.
# Without: about three times the moves a second (docs/benchmarks.md).
_helper = numba.njit(cache=True, _nrt=False)


@_helper
def _fits(cap, power, site, u, kw, p, s, d, power_on):
    for t in range(s, s + d):
        if cap[p, t] < u - EPS:
            return False
        if power_on and power[site[p], t] < kw - EPS:
            return False
    return True


@_helper
def _use(j, p, o, sign, cap, power, site, units, kw, first, n, tco, bud, budget_on):
    """Take (sign 1) or give back (sign -1) the resources of job j's run at offset o on pool p."""
    s = first[j] + o
    u = units[j, p]
    k = kw[j, p]
    for t in range(s, s + n[j, p]):
        cap[p, t] -= sign * u
        power[site[p], t] -= sign * k
    if budget_on:
        bud[0] -= sign * tco[j, p, o]


@_helper
def _fits_job(j, p, o, cap, power, site, units, kw, first, n, tco, bud, power_on, budget_on):
    if budget_on and tco[j, p, o] > bud[0] + EPS:
        return False
    return _fits(cap, power, site, units[j, p], kw[j, p], p, first[j] + o, n[j, p], power_on)


@_helper
def _shortfall(cap, power, site, u, kw, p, s, e, power_on):
    """Where a run of u units and kw kW on pool p over slots [s, e) falls short: the first and
    last such slot (-1, -1 if it fits) and the most units and kW it lacks in any slot. A job
    pushed out alone clears it only if it spans those slots with at least that much."""
    first, last = -1, -1
    need_u, need_kw = 0.0, 0.0
    for t in range(s, e):
        short = False
        if cap[p, t] < u - EPS:
            need_u = max(need_u, u - cap[p, t])
            short = True
        if power_on and power[site[p], t] < kw - EPS:
            need_kw = max(need_kw, kw - power[site[p], t])
            short = True
        if short:
            if first < 0:
                first = t
            last = t
    return first, last, need_u, need_kw


@_helper
def _best_below(j, limit, cand, cval, ncand, W, cap, power, site, units, kw, first, n, tco, bud,
                power_on, budget_on):
    """Job j's cheapest fitting run that costs less than `limit` (candidates are sorted by
    objective, so the scan stops at the limit): (pool, offset, $), or (-1, -1, inf)."""
    for i in range(ncand[j]):
        if cval[j, i] >= limit:
            break
        p = cand[j, i] // W
        o = cand[j, i] % W
        if _fits_job(j, p, o, cap, power, site, units, kw, first, n, tco, bud, power_on,
                     budget_on):
            return p, o, cval[j, i]
    return -1, -1, np.inf


@_helper
def _reinsert(k, limit, penalty, cand, cval, ncand, W, cap, power, site, units, kw, first, n,
              tco, bud, power_on, budget_on, jpool, joff, jcost):
    """Job k (out of the plan) takes its cheapest fitting run, or stays unplanned, whichever
    costs less; False when that costs `limit` or more (k is then left out, pool -1)."""
    p, o, c = _best_below(k, min(limit, penalty[k]), cand, cval, ncand, W, cap, power, site,
                          units, kw, first, n, tco, bud, power_on, budget_on)
    if p >= 0:
        _use(k, p, o, 1.0, cap, power, site, units, kw, first, n, tco, bud, budget_on)
        jpool[k] = p
        joff[k] = o
        jcost[k] = c
        return True
    jpool[k] = -1
    joff[k] = -1
    jcost[k] = penalty[k]
    return penalty[k] < limit


@_helper
def _row_search(values, j, x):
    """np.searchsorted(values[j], x) (left) without a view of the row."""
    lo, hi = 0, values.shape[1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[j, mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_helper
def _threshold(temp):
    """The annealing rule drawn in advance: a change of delta $ is accepted iff delta < this
    (any saving at temperature 0). Knowing it first bounds every reinsertion's scan."""
    if temp > 0:
        return -temp * np.log(1.0 - np.random.random())
    return -TOL


@_helper
def _move(j, old, new, plist, pcount, ppos):
    """Job j changes pool in the per-pool job lists (-1: unplanned, on no list)."""
    if old == new:
        return
    if old >= 0:
        i = ppos[j]
        last = plist[old, pcount[old] - 1]
        plist[old, i] = last
        ppos[last] = i
        pcount[old] -= 1
        ppos[j] = -1
    if new >= 0:
        plist[new, pcount[new]] = j
        ppos[j] = pcount[new]
        pcount[new] += 1


@numba.njit(cache=True)
def _excess_draws(mov, jpool, joff, rc, rval):
    """Cumulative weights for drawing the jobs `mov`: each one's reduced cost above its cheapest
    run's at the search's duals (the bound's slack that job holds; unplanned: the cap)."""
    cum = np.empty(mov.size)
    acc = 0.0
    for i in range(mov.size):
        j = mov[i]
        ex = EXCESS_CAP
        if jpool[j] >= 0:
            ex = min(max(rc[j, jpool[j], joff[j]] - rval[j, 0], 0.0), EXCESS_CAP)
        acc += ex + EXCESS_FLOOR
        cum[i] = acc
    return cum


@numba.njit(cache=True, nogil=True)
def search(cap, power, site, units, kw, first, n, obj, rc, tco, bud, penalty, movable, cand,
           cval, rcand, rval, ncand, plist, pcount, ppos, jpool, joff, jcost, attempts, seed,
           power_on, budget_on, targets, temp):
    """`attempts` random moves; updates the plan (jpool, joff, jcost), the per-pool job lists
    and the residuals in place.

    Returns the saving ($, negative when annealing made the plan dearer).
    """
    np.random.seed(seed)
    W = obj.shape[2]
    PW = obj.shape[1] * W
    mov = np.flatnonzero(movable)
    if mov.size == 0:
        return 0.0
    # half the moves start from a job drawn by its excess over its cheapest run (weights as
    # the plan stands at this call's start): that is where the gap to the bound lives (3 s of
    # search from the same states: about 0.03 points lower, though a quarter fewer moves a
    # second: those jobs have more targets to try)
    cum = _excess_draws(mov, jpool, joff, rc, rval)
    gain = 0.0
    ej = np.empty(MAX_EJECT, np.int64)
    ejo = np.empty(MAX_EJECT, np.int64)
    ejc = np.empty(MAX_EJECT, np.float64)
    keys = np.empty(MAX_EJECT, np.float64)
    order = np.empty(MAX_EJECT, np.int64)
    tq = np.empty(max(targets, 1), np.int64)
    for _ in range(attempts):
        if np.random.random() < DRAW_BY_EXCESS:
            j = mov[min(np.searchsorted(cum, np.random.random() * cum[-1]), mov.size - 1)]
        else:
            j = mov[np.random.randint(mov.size)]
        cur = jcost[j]
        p0 = jpool[j]
        o0 = joff[j]
        if p0 >= 0:
            _use(j, p0, o0, -1.0, cap, power, site, units, kw, first, n, tco, bud, budget_on)
        bp, bo, bc = _best_below(j, cur - TOL, cand, cval, ncand, W, cap, power, site, units,
                                 kw, first, n, tco, bud, power_on, budget_on)
        if bp >= 0:  # relocation
            _use(j, bp, bo, 1.0, cap, power, site, units, kw, first, n, tco, bud, budget_on)
            jpool[j] = bp
            joff[j] = bo
            jcost[j] = bc
            gain += cur - bc
            _move(j, p0, bp, plist, pcount, ppos)
            continue
        # targets: runs cheaper than the present one by objective, and (every other draw) by
        # reduced cost at the search's duals, which prices the congestion an objective-cheaper
        # run is in (the two sorted lists' prefixes)
        cheaper = _row_search(cval, j, cur - TOL)
        rcheap = _row_search(rval, j, (rc[j, p0, o0] if p0 >= 0 else np.inf) - TOL)
        m = 0
        for t in range(4 * targets):
            # a uniform draw over every (pool, start): jobs with many cheaper runs get more
            # tries than jobs already close to their cheapest
            u = np.random.randint(PW)
            if t % 2 == 0 and u < cheaper:
                tq[m] = cand[j, u]
                m += 1
            elif t % 2 == 1 and u < rcheap:
                tq[m] = rcand[j, u]
                m += 1
            if m == targets:
                break
        done = False
        for i in range(2 * m):  # every target with one job out of the way, then with several
            q = tq[i % m]
            p = q // W
            o = q % W
            s = first[j] + o
            e = s + n[j, p]
            if cap[p, s] < 0.5 * BLOCKED or cap[p, e - 1] < 0.5 * BLOCKED:
                continue  # (a split search's other side: the blocked slots are one interval)
            if i < m:
                ds, de, needu, needk = _shortfall(cap, power, site, units[j, p], kw[j, p], p, s,
                                                  e, power_on)
                for ki in range(pcount[p]):
                    k = plist[p, ki]
                    if k == j:
                        continue
                    ko = joff[k]
                    ks = first[k] + ko
                    if ks + n[k, p] <= s or ks >= e:
                        continue
                    if ds >= 0 and (ks > ds or ks + n[k, p] <= de
                                    or units[k, p] < needu - EPS or kw[k, p] < needk - EPS):
                        continue  # k alone cannot clear j's shortfall
                    kc = jcost[k]
                    _use(k, p, ko, -1.0, cap, power, site, units, kw, first, n, tco, bud,
                         budget_on)
                    if _fits_job(j, p, o, cap, power, site, units, kw, first, n, tco, bud,
                                 power_on, budget_on):
                        _use(j, p, o, 1.0, cap, power, site, units, kw, first, n, tco, bud,
                             budget_on)
                        thr = _threshold(temp)
                        ok = _reinsert(k, thr + cur + kc - obj[j, p, o], penalty, cand, cval,
                                       ncand, W, cap, power, site, units, kw, first, n, tco,
                                       bud, power_on, budget_on, jpool, joff, jcost)
                        delta = obj[j, p, o] + jcost[k] - cur - kc
                        if ok and delta < thr:
                            jpool[j] = p
                            joff[j] = o
                            jcost[j] = obj[j, p, o]
                            gain -= delta
                            done = True
                            _move(j, p0, p, plist, pcount, ppos)
                            _move(k, p, jpool[k], plist, pcount, ppos)
                            break
                        if jpool[k] >= 0:
                            _use(k, jpool[k], joff[k], -1.0, cap, power, site, units, kw,
                                 first, n, tco, bud, budget_on)
                        _use(j, p, o, -1.0, cap, power, site, units, kw, first, n, tco, bud,
                             budget_on)
                    _use(k, p, ko, 1.0, cap, power, site, units, kw, first, n, tco, bud,
                         budget_on)
                    jpool[k] = p
                    joff[k] = ko
                    jcost[k] = kc
                if done:
                    break
                continue
            ne = 0
            before = cur
            fit = False
            pc = pcount[p]
            off = np.random.randint(max(pc, 1))
            for ii in range(pc):
                k = plist[p, (ii + off) % pc]
                if k == j:
                    continue
                ks = first[k] + joff[k]
                ke = ks + n[k, p]
                if ke <= s or ks >= e:
                    continue
                lo, hi = max(s, ks), min(e, ke)
                if _fits(cap, power, site, units[j, p], kw[j, p], p, lo, hi - lo, power_on):
                    continue  # k is not in the way where j falls short
                ej[ne] = k
                ejo[ne] = joff[k]
                ejc[ne] = jcost[k]
                before += jcost[k]
                ne += 1
                _use(k, p, joff[k], -1.0, cap, power, site, units, kw, first, n, tco, bud,
                     budget_on)
                if _fits_job(j, p, o, cap, power, site, units, kw, first, n, tco, bud,
                             power_on, budget_on):
                    fit = True
                    break
                if ne == MAX_EJECT:
                    break
            if fit and ne >= 2:
                _use(j, p, o, 1.0, cap, power, site, units, kw, first, n, tco, bud, budget_on)
                after = obj[j, p, o]
                for a in range(ne):  # largest first
                    keys[a] = -units[ej[a], p] + 0.1 * np.random.random()
                    order[a] = a
                    jpool[ej[a]] = -1  # out until reinserted
                for a in range(1, ne):  # (insertion sort of at most MAX_EJECT keys)
                    b = a
                    while b > 0 and keys[order[b - 1]] > keys[order[b]]:
                        order[b - 1], order[b] = order[b], order[b - 1]
                        b -= 1
                thr = _threshold(temp)
                ok = True
                for ai in range(ne):
                    a = order[ai]
                    ok = _reinsert(ej[a], thr + before - after, penalty, cand, cval, ncand, W,
                                   cap, power, site, units, kw, first, n, tco, bud, power_on,
                                   budget_on, jpool, joff, jcost)
                    after += jcost[ej[a]]
                    if not ok:
                        break
                if ok and after - before < thr:
                    jpool[j] = p
                    joff[j] = o
                    jcost[j] = obj[j, p, o]
                    gain += before - after
                    done = True
                    _move(j, p0, p, plist, pcount, ppos)
                    for a in range(ne):
                        _move(ej[a], p, jpool[ej[a]], plist, pcount, ppos)
                    break
                for a in range(ne):
                    k = ej[a]
                    if jpool[k] >= 0:
                        _use(k, jpool[k], joff[k], -1.0, cap, power, site, units, kw, first,
                             n, tco, bud, budget_on)
                _use(j, p, o, -1.0, cap, power, site, units, kw, first, n, tco, bud, budget_on)
            for a in range(ne):
                k = ej[a]
                _use(k, p, ejo[a], 1.0, cap, power, site, units, kw, first, n, tco, bud,
                     budget_on)
                jpool[k] = p
                joff[k] = ejo[a]
                jcost[k] = ejc[a]
        if not done and p0 >= 0:
            _use(j, p0, o0, 1.0, cap, power, site, units, kw, first, n, tco, bud, budget_on)
    return gain


@dataclass
class LocalSearchStats:
    """What one call did."""

    attempts: int = 0
    gain: float = 0.0
    seconds: float = 0.0


@dataclass(eq=False)
class _Moves:
    """One plan as the compiled moves see it: arrays only, so one thread may own it."""

    cap: np.ndarray       # residual capacity (P, T), updated by the moves
    power: np.ndarray     # residual site power (S, T)
    fixed: tuple          # the search's other arguments, up to the plan
    jpool: np.ndarray     # int (J,) pool of each job's run, -1 unplanned
    joff: np.ndarray      # int (J,) its start offset from the job's earliest start
    jcost: np.ndarray     # float (J,) its objective $ (the penalty when unplanned)
    power_on: bool
    budget_on: bool
    best: float = np.inf  # the cheapest plan seen (sum of jcost) and where its jobs were
    best_pool: np.ndarray | None = None
    best_off: np.ndarray | None = None
    attempts: int = 0


def _cheapest(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each job's `k` cheapest runs of `values` (J, P, W): their flat (pool, offset) indices and
    values, cheapest first."""
    flat = values.reshape(values.shape[0], -1)
    idx = np.argsort(flat, axis=1, kind="stable")[:, :k].astype(np.int64)
    return idx, np.ascontiguousarray(np.take_along_axis(flat, idx, axis=1))


def _pool_lists(jpool: np.ndarray, movable: np.ndarray, P: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The movable planned jobs of each pool (for finding those in a run's way): the lists
    (P, n), their lengths (P,) and each job's place in its list (J,), -1 off every list."""
    on = np.flatnonzero(movable & (jpool >= 0))
    on = on[np.argsort(jpool[on], kind="stable")]
    pcount = np.bincount(jpool[on], minlength=P).astype(np.int64)
    plist = np.full((P, max(int(movable.sum()), 1)), -1, np.int64)
    ppos = np.full(jpool.size, -1, np.int64)
    place = np.arange(on.size) - (np.cumsum(pcount) - pcount)[jpool[on]]
    plist[jpool[on], place] = on
    ppos[on] = place
    return plist, pcount, ppos


def _moves(prep, d: DenseCandidates, jpool: np.ndarray, joff: np.ndarray,
           movable: np.ndarray, res: Residual, max_candidates: int) -> _Moves:
    """The arrays the moves work on, for the plan (jpool, joff) with residuals `res`."""
    inst, cc = prep.inst, prep.cc
    P, W = d.objective.shape[1], d.objective.shape[2]
    jcost = _costs(d, jpool, joff, prep.penalty.astype(np.float64))
    K = min(P * W, max_candidates)
    cand, cval = _cheapest(d.objective, K)
    ncand = np.isfinite(cval).sum(axis=1).astype(np.int64)
    rc = np.where(np.isfinite(d.objective), d.cost, np.inf)  # reduced cost at the duals
    rcand, rval = _cheapest(rc, K)
    plist, pcount, ppos = _pool_lists(jpool, movable, P)
    budget_on = d.t is not None and bool(np.isfinite(res.budget))
    fixed = (np.asarray(inst.site, dtype=np.int64),
             np.ascontiguousarray(cc.units, dtype=np.float64),
             np.ascontiguousarray(cc.facility_kw, dtype=np.float64),
             np.asarray(d.first, dtype=np.int64), np.asarray(d.n, dtype=np.int64),
             d.objective, rc, d.t if budget_on else np.zeros((1, 1, 1)),
             np.array([float(res.budget) if budget_on else 0.0]),
             prep.penalty.astype(np.float64), movable, cand, cval, rcand, rval, ncand, plist,
             pcount, ppos)
    return _Moves(cap=np.where(np.isfinite(res.cap), res.cap, 1e18),
                  power=np.where(np.isfinite(res.power), res.power, 1e18), fixed=fixed,
                  jpool=jpool, joff=joff, jcost=jcost,
                  power_on=bool(np.isfinite(res.power).any()), budget_on=budget_on,
                  best=float(jcost.sum()), best_pool=jpool.copy(), best_off=joff.copy())


def _anneal(mv: _Moves, time_limit: float, *, goal: float = -np.inf, seed: int = 0,
            targets: int = 8, t0: float = 0.5, t1: float = 0.005,
            stop: threading.Event | None = None) -> None:
    """Moves for `time_limit` s (temperature t0 -> t1 $, geometric), until the plan's cost
    reaches `goal` or `stop` is set; the best plan seen is kept in `mv`."""
    started = time.perf_counter()
    end = started + time_limit
    cur = float(mv.jcost.sum())
    chunk, rng_seed = 200, seed
    while not (stop is not None and stop.is_set()):
        now = time.perf_counter()
        if now >= end or mv.best <= goal:
            break
        temp = t0 * (t1 / t0) ** ((now - started) / time_limit) if t0 > 0 else 0.0
        cur -= search(mv.cap, mv.power, *mv.fixed, mv.jpool, mv.joff, mv.jcost, chunk,
                      rng_seed, mv.power_on, mv.budget_on, targets, temp)
        mv.attempts += chunk
        rng_seed += 1
        took = time.perf_counter() - now
        chunk = int(np.clip(chunk * 0.02 / max(took, 1e-4), 50, 20000))  # ~20 ms a call
        if cur < mv.best - 1e-9:
            mv.best = cur
            mv.best_pool[:], mv.best_off[:] = mv.jpool, mv.joff


def _costs(d: DenseCandidates, jpool: np.ndarray, joff: np.ndarray,
           penalty: np.ndarray) -> np.ndarray:
    """Each job's $ in the plan (jpool, joff): its run's objective, or its penalty unplanned."""
    on = jpool >= 0
    return np.where(on, d.objective[np.arange(jpool.size), np.maximum(jpool, 0),
                                     np.maximum(joff, 0)], penalty)


def _usage(prep, d: DenseCandidates, jpool: np.ndarray, joff: np.ndarray,
           mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The capacity units (P, T) and facility kW (S, T) the runs of the jobs in `mask` take."""
    runs = Schedule.from_starts(prep.inst, np.where(mask, jpool, -1), d.first + joff)
    return usage_of(prep.inst, prep.cc, runs)


def _side(mv: _Moves, cap: np.ndarray, power: np.ndarray, mask: np.ndarray, blocked: slice,
          jpool: np.ndarray, joff: np.ndarray, jcost: np.ndarray) -> _Moves | None:
    """One chain of a split search: the jobs of `mask` may move, the `blocked` slots are taken."""
    if not mask.any():
        return None
    cap, power = cap.copy(), power.copy()
    cap[:, blocked] = BLOCKED
    if mv.power_on:
        power[:, blocked] = BLOCKED
    fixed = list(mv.fixed)
    fixed[_MOVABLE] = mask
    fixed[_LISTS] = _pool_lists(jpool, mask, cap.shape[0])
    return _Moves(cap=cap, power=power, fixed=tuple(fixed), jpool=jpool.copy(),
                  joff=joff.copy(), jcost=jcost.copy(), power_on=mv.power_on,
                  budget_on=mv.budget_on, best=float(jcost.sum()), best_pool=jpool.copy(),
                  best_off=joff.copy())


def _anneal_split(prep, mv: _Moves, d: DenseCandidates, movable: np.ndarray,
                  time_limit: float, *,
                  goal: float = -np.inf, seed: int = 0, targets: int = 8, t0: float = 0.5,
                  t1: float = 0.005, stretch: float = 0.5) -> None:
    """`_anneal` by two chains at once, one on each side of a boundary slot that moves between
    stretches (the module docstring); the merged plan is left as `mv`'s best. Not with a
    carbon budget (it couples the two sides)."""
    started = time.perf_counter()
    J, T = mv.jpool.size, mv.cap.shape[1]
    rows = np.arange(J)
    penalty = prep.penalty.astype(np.float64)
    took_cap, took_power = _usage(prep, d, mv.jpool, mv.joff, movable)
    open_cap, open_power = mv.cap + took_cap, mv.power + took_power  # every movable job out
    pool, off = mv.jpool.copy(), mv.joff.copy()
    rng = np.random.default_rng(seed)
    k = 0
    while True:
        now = time.perf_counter() - started
        if now >= time_limit - 0.02:
            break
        step = min(stretch, time_limit - now)
        temps = [t0 * (t1 / t0) ** (x / time_limit) if t0 > 0 else 0.0
                 for x in (now, now + step)]
        cut = T // 2 if k % 2 == 0 else int(rng.integers(T // 3, 2 * T // 3 + 1))
        on = pool >= 0
        first = np.where(on, d.first + off, 0)
        end = np.where(on, first + d.n[rows, np.maximum(pool, 0)], 0)
        coin = rng.random(J) < 0.5  # unplanned jobs try one side or the other
        early = movable & np.where(on, end <= cut, coin)
        late = movable & np.where(on, first >= cut, ~coin)
        took_cap, took_power = _usage(prep, d, pool, off, movable)
        jcost = _costs(d, pool, off, penalty)
        sides = [(mask, _side(mv, open_cap - took_cap, open_power - took_power, mask, blocked,
                              pool, off, jcost))
                 for mask, blocked in ((early, slice(cut, T)), (late, slice(0, cut)))]
        threads = [threading.Thread(target=_anneal, args=(side, step), daemon=True,
                                    kwargs={"seed": seed + 7919 * k + i, "targets": targets,
                                            "t0": temps[0], "t1": temps[1]})
                   for i, (_, side) in enumerate(sides) if side is not None]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for mask, side in sides:
            if side is not None:
                pool = np.where(mask, side.best_pool, pool)
                off = np.where(mask, side.best_off, off)
                mv.attempts += side.attempts
        k += 1
        cost = float(_costs(d, pool, off, penalty).sum())
        if cost < mv.best - 1e-9:
            mv.best, mv.best_pool[:], mv.best_off[:] = cost, pool, off
        if mv.best <= goal:
            break


def improve(lns: LNS, time_limit: float, *, target: float = -np.inf, seed: int = 0,
            targets: int = 8, t0: float = 0.5, t1: float = 0.005,
            max_candidates: int = 1024, workers: int = 1,
            stretch: float = 0.5) -> LocalSearchStats:
    """Anneal the search's incumbent for `time_limit` s, or until its objective reaches `target`
    (temperature t0 -> t1 $, geometric), and adopt the best plan seen; `lns` (an `LNS`) supplies
    the plan, its residuals and the dense contiguous candidates. With 2 `workers`, two chains on
    the two sides of the horizon at once (`_anneal_split`)."""
    started = time.perf_counter()
    stats = LocalSearchStats()
    prep, cols, inc, d = lns.prep, lns.cols, lns.inc, lns.dense
    if d is None or time_limit <= 0:
        return stats
    J = prep.n_jobs
    W = d.objective.shape[2]
    chosen = inc.chosen
    jpool = np.full(J, -1, np.int64)
    joff = np.full(J, -1, np.int64)
    movable = prep.free.copy()
    for j in np.flatnonzero(chosen >= 0):
        c = chosen[j]
        p = int(cols.pool[c])
        sl = cols.column_slots(c)
        o = int(sl[0]) - int(d.first[j])
        if (len(sl) == d.n[j, p] and sl[-1] - sl[0] + 1 == len(sl) and 0 <= o < W
                and np.isfinite(d.objective[j, p, o])):
            jpool[j], joff[j] = p, o
        else:  # a multi-segment run: stays (its use is part of the residual)
            movable[j] = False
    if not movable.any():
        return stats
    old_pool, old_off = jpool.copy(), joff.copy()
    mv = _moves(prep, d, jpool, joff, movable, inc.res, max_candidates)
    goal = target - (inc.objective - mv.best)  # the objective less what the moves cannot change
    left = time_limit - (time.perf_counter() - started)
    if workers >= 2 and not mv.budget_on and mv.cap.shape[1] >= 4:
        _anneal_split(prep, mv, d, movable, left, goal=goal, seed=seed, targets=targets, t0=t0,
                      t1=t1, stretch=stretch)
    else:
        _anneal(mv, left, goal=goal, seed=seed, targets=targets, t0=t0, t1=t1)
    stats.attempts = mv.attempts
    stats.seconds = time.perf_counter() - started
    moved = np.flatnonzero((mv.best_pool != old_pool) | (mv.best_off != old_off))
    if moved.size:
        new = run_columns(prep, cols, moved, mv.best_pool[moved],
                          d.first[moved] + mv.best_off[moved])
        lns._refresh()
        before = inc.objective
        inc.set_jobs(moved, new)
        stats.gain = before - inc.objective
    return stats


class Background:
    """The moves on a second core while column generation runs on the first (one HiGHS thread
    and numpy leave it idle): from the greedy plan at `duals` (an early iteration's), annealed
    until `result()`. Reads only the prepared instance and the pricer; fails open."""

    def __init__(self, prep, pricer, duals, *, time_limit: float, seed: int = 0) -> None:
        self.prep, self.pricer, self.duals = prep, pricer, duals
        self.time_limit, self.seed = time_limit, seed
        self.mv: _Moves | None = None
        self.dense: DenseCandidates | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="carbonplan-moves", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            prep = self.prep
            d = self.pricer.dense(self.duals)
            res = Residual.of(prep)
            order = size_order(prep, d)
            pool, start = place_dense(prep, d, order, res, limit=prep.penalty)
            jpool = np.full(prep.n_jobs, -1, np.int64)
            joff = np.full(prep.n_jobs, -1, np.int64)
            jpool[order] = pool
            joff[order] = np.where(pool >= 0, start - d.first[order], -1)
            mv = _moves(prep, d, jpool, joff, prep.free.copy(), res, 1024)
            self.dense, self.mv = d, mv
            _anneal(mv, self.time_limit - (time.perf_counter() - started), seed=self.seed,
                    stop=self._stop)
        except Exception:  # fail open: the plan goes on without it
            self.mv = None

    def result(self, wait: float = 0.05) -> tuple[np.ndarray, np.ndarray, int] | None:
        """Stop the moves; (pool, first slot per job of the best plan seen, moves tried), or
        None when it failed or is still setting up after `wait` s (then it ends by itself once
        set up: the plan does not wait for a start it would not use)."""
        self._stop.set()
        self._thread.join(wait)
        if self._thread.is_alive() or self.mv is None or self.dense is None:
            return None
        mv = self.mv
        return mv.best_pool, self.dense.first + mv.best_off, mv.attempts


_warming: subprocess.Popen | None = None


def ready() -> bool:
    """Whether the moves run without compiling first: compiled in this process, or cached
    for this very source (numba drops a cache whose module changed since, as after an upgrade,
    and would compile for seconds inside a plan's time limit: measured 13.6 s for a 10-s plan)."""
    if _warming is not None:
        _warming.poll()  # reaps a finished background compile (a daemon would keep a zombie)
    if search.signatures:
        return True
    try:  # the index numba would load: empty when missing, of another numba, or stale
        return bool(search._cache._cache_file._load_index())
    except Exception:  # numba's cache layout changed, or an unreadable index: do not guess
        return False


def warm_up() -> None:
    """Compile the moves into numba's cache in a background process (once per process)."""
    global _warming
    if _warming is not None or ready():
        return
    try:
        _warming = subprocess.Popen([sys.executable, "-m", "carbonplan.planner.local_search"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:  # fail open: the plan searches without these moves
        pass


def _compile() -> None:
    """Run the moves once on a two-job instance, which compiles and caches them."""
    J, P, W, T = 2, 1, 2, 3
    obj = np.array([[[1.0, 2.0]], [[1.0, 3.0]]])
    cand = np.tile(np.arange(P * W, dtype=np.int64), (J, 1))
    cval = obj.reshape(J, P * W).copy()
    plist = np.array([[0, -1]])
    search(np.ones((P, T)), np.full((1, T), 1e18), np.zeros(P, np.int64), np.ones((J, P)),
           np.zeros((J, P)), np.zeros(J, np.int64), np.ones((J, P), np.int64), obj, obj,
           np.zeros((1, 1, 1)), np.zeros(1), np.full(J, 10.0), np.ones(J, bool), cand, cval,
           cand, cval, np.full(J, P * W, np.int64), plist, np.ones(P, np.int64),
           np.array([0, -1]), np.array([0, -1]), np.array([0, -1]), np.array([1.0, 10.0]),
           10, 0, False, False, 2, 0.1)


if __name__ == "__main__":
    _compile()
