"""Feasible time windows per (job, pool), including the spot deadline-safety rule.

A column of job j on pool p may occupy slots in [release[j], latest_end[j, p]). For on-demand and
owned pools `latest_end = deadline`. For a spot pool the column must also be deadline-safe: an
eviction at the worst moment of the run must still leave time to finish on the fastest eligible
non-spot pool q* (fewest `duration_slots`) before the deadline. With, in slots,

    n   = duration_slots[j, p]      work on the spot pool
    nq  = duration_slots[j, q*]     the same work on the fallback pool
    i   = checkpoint interval (the whole run n when the job never checkpoints), capped at n
    c   = checkpoint (restore) cost
    K   = ceil(n / i)               checkpoints in the run

an eviction just before progress min(k*i, n) (k = 1..K) loses the work since checkpoint k-1, the job
restarts at the next slot boundary on q* and redoes the remaining share of its work plus the
restore:

    finish_k - end = ceil(min(k*i, n)) - n + ceil(nq * (n - (k-1)*i) / n + c)
    tail[j, p]     = max_k (finish_k - end)

and the column is allowed iff its end (exclusive) + tail <= deadline. For a contiguous column this
is exact; for a pausable column the eviction time at a given progress is never later than this, so
the rule is conservative. Without an eligible non-spot pool a spot column is never safe.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbonplan.planner.costs import checkpoint_interval_eff_h
from carbonplan.planner.instance import SPOT, Instance

_EPS = 1e-9


@dataclass(frozen=True, eq=False)
class Windows:
    """Start windows per (job, pool). A pair with `n_starts == 0` has no contiguous column."""

    earliest: np.ndarray   # int32 (J,): first usable slot (release clipped to the horizon)
    latest_end: np.ndarray  # int32 (J, P): slots < latest_end may be used; -1 where not eligible
    n_starts: np.ndarray   # int32 (J, P): contiguous starts in [earliest, latest_end - n]
    spot_tail: np.ndarray  # int32 (J, P): spot safety tail in slots (0 off spot)


def spot_tail_slots(inst: Instance) -> np.ndarray:
    """Slots that must remain after a spot column's end (the module docstring's rule), (J, P).

    Returns a large value (the horizon length + 1) where the job has no eligible non-spot pool.
    """
    J, P, T = inst.n_jobs, inst.n_pools, inst.n_slots
    is_spot = inst.market == SPOT
    tail = np.zeros((J, P), dtype=np.int64)
    if not is_spot.any():
        return tail.astype(np.int32)
    fallback_ok = inst.eligible & ~is_spot[None, :]
    big = np.iinfo(np.int32).max // 4
    nq = np.where(fallback_ok, inst.duration_slots, big).min(axis=1).astype(float)  # (J,)
    has_fallback = fallback_ok.any(axis=1)
    n = np.maximum(inst.duration_slots.astype(float), 1.0)                           # (J, P)
    i = checkpoint_interval_eff_h(inst, n * inst.slot_h) / inst.slot_h               # (J, P)
    i = np.clip(i, 1e-6, n)
    c = (inst.checkpoint_cost_h / inst.slot_h)[:, None]
    k_count = np.ceil(n / i - _EPS)
    k_max = int(min(k_count[inst.eligible & is_spot[None, :]].max(initial=1), 4 * T + 4))
    worst = np.full((J, P), -np.inf)
    for k in range(1, k_max + 1):
        active = k <= k_count
        evict = np.ceil(np.minimum(k * i, n) - _EPS)
        remaining = nq[:, None] * (n - (k - 1) * i) / n + c
        finish = evict - n + np.ceil(remaining - _EPS)
        worst = np.where(active, np.maximum(worst, finish), worst)
    tail = np.where(is_spot[None, :], np.maximum(worst, 0), 0)
    tail = np.where(is_spot[None, :] & ~has_fallback[:, None], T + 1, tail)
    return tail.astype(np.int32)


def build_windows(inst: Instance) -> Windows:
    """Start windows of every (job, pool) pair, with the spot rule applied."""
    T = inst.n_slots
    tail = spot_tail_slots(inst)
    earliest = np.clip(inst.release, 0, T).astype(np.int32)
    latest_end = np.minimum(inst.deadline_by_pool, T) - tail
    latest_end = np.where(inst.eligible, latest_end, -1).astype(np.int32)
    n_starts = latest_end - inst.duration_slots - earliest[:, None] + 1
    n_starts = np.where(inst.eligible, np.maximum(n_starts, 0), 0).astype(np.int32)
    return Windows(earliest=earliest, latest_end=latest_end, n_starts=n_starts, spot_tail=tail)
