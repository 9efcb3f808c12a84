"""Every pausable column of one (job, pool) whose reduced cost may lie under a limit.

The completion step (`solve.complete`) proves a plan optimal by solving the integer master over
every column within the gap. For contiguous jobs these are read off the priced table; a pausable
job's columns are sets of segments, too many to list over a wide window (2^W). But a column's
reduced cost is a sum over its occupied slots of non-negative slot terms (its cost times
`1 + rework`, minus the duals' share, all >= 0 since the duals are <= 0), plus a move penalty
>= 0, so a depth-first search over segments can drop every branch whose cost so far plus the
cheapest possible rest already exceeds the limit. What it returns is a superset of the columns
within the limit (the caller filters them by exact reduced cost), so completeness, and with it
the optimality proof, is kept.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import numpy as np

from carbonplan.planner.columns import price_columns
from carbonplan.planner.duals import Duals
from carbonplan.planner.prepare import Prepared


class TooMany(Exception):
    """More columns under the limit than the caller can take."""


def slot_reduced_costs(prep: Prepared, j: int, p: int, duals: Duals
                       ) -> tuple[int, np.ndarray, np.ndarray]:
    """First slot, reduced cost of each slot of the window of job j on pool p (move excluded),
    and what is taken off a slot when the run's work ends in it (its uncharged share)."""
    inst, cc = prep.inst, prep.cc
    lo = int(prep.win.earliest[j])
    width = max(int(prep.win.latest_end[j, p]) - lo, 0)
    if width == 0:
        return lo, np.zeros(0), np.zeros(0)
    ts = np.arange(lo, lo + width, dtype=np.int32)
    one = price_columns(inst, cc, np.full(width, j), np.full(width, p),
                        np.arange(width + 1, dtype=np.int64), ts, whole_runs=False)
    y = duals.projected()
    lam = y.lam if np.isfinite(prep.budget_t) else 0.0
    t_co2e = (one.kg_op + one.kg_emb) / 1000.0
    static = np.maximum(one.objective - one.move_usd - lam * t_co2e, 0.0)
    rc = static - cc.units[j, p] * y.beta[p, ts] - cc.facility_kw[j, p] * y.pi[inst.site[p], ts]
    # each term is >= 0; clip rounding noise
    return lo, np.maximum(rc, 0.0), (1.0 - cc.final_share[j, p]) * static


def pausable_columns_under(prep: Prepared, j: int, p: int, duals: Duals, limit: float, *,
                           max_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Pausable columns of (j, p) whose reduced cost (move excluded) is at most `limit`, as CSR.

    A column: a first run of 1..n work slots, then runs of `resume_slots` resume slots plus at
    least one work slot each, runs separated by at least one free slot, n work slots in all
    (`enumerate_pausable` lists the same set exhaustively).

    Raises:
        TooMany: more than `max_columns` columns.
    """
    lo, rt, last_off = slot_reduced_costs(prep, j, p, duals)
    # a column's reduced cost is its slots' sum less `last_off` of its last slot: prune with
    # the most that can come off, decide at the leaf exactly
    slack = float(last_off.max(initial=0.0))
    n = int(prep.inst.duration_slots[j, p])
    r = int(prep.inst.resume_slots[j])
    W = len(rt)
    prefix = np.concatenate([[0.0], np.cumsum(rt)])
    suffix_min = np.minimum.accumulate(np.concatenate([rt, [np.inf]])[::-1])[::-1]
    out: list[list[int]] = []

    def search(pos: int, work_left: int, lead: int, cost: float,
               runs: list[tuple[int, int]]) -> None:
        """Runs from slot `pos` on: `lead` resume slots, then work; `work_left` work to place."""
        for s in range(pos, W):
            # every completion from s takes lead + work_left slots at least, each costing at
            # least suffix_min[s], which only grows with s: past here nothing fits or pays
            if s + lead + work_left > W or \
                    cost + (lead + work_left) * suffix_min[s] > limit + slack + 1e-9:
                break
            for w in range(1, work_left + 1):
                end = s + lead + w
                c = cost + prefix[end] - prefix[s]
                left = work_left - w
                if left == 0:
                    if c - last_off[end - 1] <= limit + 1e-9:
                        out.append([*(t for a, b in runs for t in range(a, b)),
                                    *range(s, end)])
                        if len(out) > max_columns:
                            raise TooMany
                    continue
                nxt = end + 1  # a pause of one slot at least
                if nxt + r + left > W:
                    continue  # no room for another run; the single run (w = work_left) may fit
                if c + (r + left) * suffix_min[nxt] > limit + slack + 1e-9:
                    continue
                search(nxt, left, r, c, [*runs, (s, end)])

    if 0 < n <= W:
        search(0, n, 0, 0.0, [])
    indptr = np.zeros(len(out) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in out], out=indptr[1:])
    slots = (np.fromiter((t for c in out for t in c), dtype=np.int64, count=int(indptr[-1]))
             + lo).astype(np.int32)
    return indptr, slots
