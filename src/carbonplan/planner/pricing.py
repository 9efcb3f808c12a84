"""Pricing: the cheapest column of every (job, pool) pair against dual prices, vectorized.

For duals y = (beta[p, t] <= 0, pi[s, t] <= 0, lam <= 0) the reduced cost of a column of job j on
pool p over slots S, before the job's own `job-assign` dual, is

    rc = objective(col) - lam * t_co2e(col) - units[j, p] * sum_S beta[p, t]
         - facility_kw[j, p] * sum_S pi[site(p), t]

Contiguous runs: all starts of a pair are priced at once from window sums, gathered from
(n, start) tables built from cumulative sums; the static part (objective, tCO2e of every start) is
computed once at construction (for every job: a pausable job may run in one segment too). Pausable
jobs also get a small dynamic program over the job's window (states:
work done, running / paused / resuming), vectorized over pairs and grouped by duration; each resume
occupies `resume_slots` extra slots, which are paid like any other slot.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from carbonplan.planner.columns import contiguous_slots
from carbonplan.planner.duals import Duals
from carbonplan.planner.prepare import Prepared

INF = np.inf


def _window_tables(values: np.ndarray, n_max: int) -> np.ndarray:
    """Window sums of rows of `values` (R, T): out[r, n, s] = sum values[r, s:s+n] (clipped at T).

    Returns:
        float (R, n_max + 1, T + 1).
    """
    R, T = values.shape
    cum = np.zeros((R, T + 1))
    np.cumsum(values, axis=1, out=cum[:, 1:])
    s = np.arange(T + 1)[None, :]
    e = np.minimum(s + np.arange(n_max + 1)[:, None], T)
    return cum[:, e] - cum[:, np.broadcast_to(s, e.shape)]


@dataclass(eq=False)
class _ContiguousBlock:
    """Every contiguous candidate of one pool: rows are jobs, columns are start offsets."""

    pool: int
    site: int
    jobs: np.ndarray    # int (R,)
    first: np.ndarray   # int (R,): earliest start
    n: np.ndarray       # int (R,): duration in slots
    units: np.ndarray   # float (R,)
    fkw: np.ndarray     # float (R,): facility kW
    obj: np.ndarray     # float (R, W): objective of each start (inf = not allowed)
    t: np.ndarray       # float (R, W): tCO2e of each start
    idx: np.ndarray     # int (R, W): flat index n * (T + 1) + start into window tables


@dataclass(eq=False)
class _PausableGroup:
    """Pausable (job, pool) pairs of similar duration, priced by one vectorized DP."""

    jobs: np.ndarray     # int (N,)
    pools: np.ndarray    # int (N,)
    sites: np.ndarray    # int (N,)
    first: np.ndarray    # int (N,): first usable slot
    width: np.ndarray    # int (N,): usable slots [first, first + width)
    n: np.ndarray        # int (N,): work slots
    resume: np.ndarray   # int (N,): extra slots per resume
    units: np.ndarray    # float (N,)
    fkw: np.ndarray      # float (N,)
    obj: np.ndarray      # float (N, W): objective of each usable slot (incl. rework)
    t: np.ndarray        # float (N, W): tCO2e of each usable slot
    start_extra: np.ndarray  # float (N, W): move penalty paid when the run starts at that slot
    unused: np.ndarray   # float (N,): share of the last work slot not charged (1 - final share)
    slot_idx: np.ndarray  # int (N, W): absolute slot (clipped) of each offset


@dataclass(eq=False)
class _Paths:
    """One pricing's DP result for a pausable group: enough to rebuild its best runs. Kept on
    the PricingResult, not on the group, so that pricing again (in this thread or another)
    leaves earlier results readable."""

    best_step: np.ndarray  # int (N,): last slot of each row's best run (-1: none)
    choices: tuple[np.ndarray, np.ndarray] | None  # back-pointers (None: not kept)


@dataclass(eq=False)
class DenseCandidates:
    """All contiguous candidates: start `first[j] + k` of job j on pool p is entry [j, p, k]."""

    cost: np.ndarray       # float (J, P, W): score used to choose (objective or reduced cost)
    objective: np.ndarray  # float (J, P, W): objective $ (inf where not allowed)
    t: np.ndarray | None   # float (J, P, W): tCO2e (only with a carbon budget)
    first: np.ndarray      # int (J,): earliest start
    n: np.ndarray          # int (J, P): duration in slots


@dataclass(eq=False)
class PricingResult:
    """Cheapest column per (job, pool) and per job, and the Lagrangian value, for given duals."""

    duals: Duals
    pair_rc: np.ndarray      # float (J, P): min reduced cost (inf: no column)
    pair_start: np.ndarray   # int (J, P): first slot of that column (-1: none)
    pair_group: np.ndarray   # int (J, P): pausable group index (-1: contiguous / none)
    pair_row: np.ndarray     # int (J, P): row within that group
    job_rc: np.ndarray       # float (J,): min(unplanned penalty, min_p pair_rc); 0 for frozen
    job_pool: np.ndarray     # int (J,): pool of the cheapest column, -1 if unplanned is cheaper
    lagrangian: float        # L(y): a valid lower bound on the optimum
    groups: list[_PausableGroup] = field(repr=False, default_factory=list)
    paths: list[_Paths] = field(repr=False, default_factory=list)  # per group


class Pricer:
    """Prices the free jobs of a prepared instance against duals (see the module docstring)."""

    def __init__(self, prep: Prepared, jobs: np.ndarray | None = None) -> None:
        inst, cc, win = prep.inst, prep.cc, prep.win
        self.prep = prep
        J, P, T = inst.n_jobs, inst.n_pools, inst.n_slots
        self.T = T
        active = prep.free.copy()
        if jobs is not None:
            mask = np.zeros(J, dtype=bool)
            mask[jobs] = True
            active &= mask
        self.active = active
        cpkg = cc.carbon_usd_per_kg
        # static per-slot components per pool: $ per unit-slot, $ per kWh (energy + carbon),
        # kg per kWh
        usd_unit = cc.usd_per_unit_slot
        usd_kwh = cc.energy_usd_per_kwh + cpkg * cc.kg_per_kwh
        kg_kwh = cc.kg_per_kwh
        # every active job has contiguous candidates (a pausable job may also run in one
        # segment); the pausable DP below can only improve on them
        pair_ok = active[:, None] & inst.eligible & (win.n_starts > 0)
        self.n_max = int(inst.duration_slots[pair_ok].max(initial=1))
        tab_unit = _window_tables(usd_unit, self.n_max)
        tab_kwh = _window_tables(usd_kwh, self.n_max)
        tab_kg = _window_tables(kg_kwh, self.n_max)
        prev_pool, prev_start = inst.prev_pool, inst.prev_start
        move = np.where(prev_pool >= 0, inst.move_penalty_usd, 0.0)
        self.blocks: list[_ContiguousBlock] = []
        for p in range(P):
            jobs_p = np.flatnonzero(pair_ok[:, p])
            if jobs_p.size == 0:
                continue
            width = win.n_starts[jobs_p, p]
            W = int(width.max())
            k = np.arange(W)[None, :]
            valid = k < width[:, None]
            first = win.earliest[jobs_p]
            start = np.where(valid, first[:, None] + k, 0)
            n = inst.duration_slots[jobs_p, p].astype(np.int64)
            idx = (n[:, None] * (T + 1) + start).astype(np.int64)
            u = cc.units[jobs_p, p]
            kwh = cc.slot_kwh[jobs_p, p]
            emb = cc.emb_kg_slot[jobs_p, p]
            f = 1.0 + cc.rework_factor[jobs_p, p]
            obj = f[:, None] * (u[:, None] * tab_unit[p].ravel()[idx]
                                + kwh[:, None] * tab_kwh[p].ravel()[idx]
                                + (n * emb * cpkg)[:, None])
            t = f[:, None] * (kwh[:, None] * tab_kg[p].ravel()[idx] + (n * emb)[:, None]) / 1000
            # the run ends inside its last slot: that slot is charged its final share only
            last = np.clip(start + n[:, None] - 1, 0, T - 1)
            unused = (f * (1.0 - cc.final_share[jobs_p, p]))[:, None]
            obj = obj - unused * (u[:, None] * usd_unit[p, last] + kwh[:, None] * usd_kwh[p, last]
                                  + (emb * cpkg)[:, None])
            t = t - unused * (kwh[:, None] * kg_kwh[p, last] + emb[:, None]) / 1000
            mv = move[jobs_p][:, None] * ~((prev_pool[jobs_p] == p)[:, None]
                                           & (start == prev_start[jobs_p][:, None]))
            obj = np.where(valid, obj + mv, INF)
            self.blocks.append(_ContiguousBlock(
                pool=p, site=int(inst.site[p]), jobs=jobs_p, first=first, n=n, units=u,
                fkw=cc.facility_kw[jobs_p, p], obj=obj, t=np.where(valid, t, 0.0), idx=idx))
        self.groups = self._build_pausable(usd_unit, usd_kwh, kg_kwh, move)

    # ---------------------------------------------------------------------------------------
    def _build_pausable(self, usd_unit: np.ndarray, usd_kwh: np.ndarray, kg_kwh: np.ndarray,
                        move: np.ndarray) -> list[_PausableGroup]:
        prep = self.prep
        inst, cc, win = prep.inst, prep.cc, prep.win
        T = inst.n_slots
        pausable = self.active & inst.pausable
        width_all = win.latest_end - win.earliest[:, None]
        ok = pausable[:, None] & inst.eligible & (width_all >= inst.duration_slots)
        jj, pp = np.nonzero(ok)
        if jj.size == 0:
            return []
        n_all = inst.duration_slots[jj, pp].astype(np.int64)
        bucket = np.ceil(np.log2(np.maximum(n_all, 1))).astype(int)
        groups = []
        cpkg = cc.carbon_usd_per_kg
        for b in np.unique(bucket):
            sel = bucket == b
            j, p = jj[sel], pp[sel]
            first = win.earliest[j].astype(np.int64)
            width = width_all[j, p].astype(np.int64)
            W = int(width.max())
            k = np.arange(W)[None, :]
            valid = k < width[:, None]
            slot = np.where(valid, first[:, None] + k, 0)
            slot = np.clip(slot, 0, T - 1)
            u = cc.units[j, p]
            kwh = cc.slot_kwh[j, p]
            emb = cc.emb_kg_slot[j, p]
            f = 1.0 + cc.rework_factor[j, p]
            obj = f[:, None] * (u[:, None] * usd_unit[p[:, None], slot]
                                + kwh[:, None] * usd_kwh[p[:, None], slot]
                                + (emb * cpkg)[:, None])
            t = f[:, None] * (kwh[:, None] * kg_kwh[p[:, None], slot] + emb[:, None]) / 1000
            keep_start = ((inst.prev_pool[j] == p)[:, None]
                          & (first[:, None] + k == inst.prev_start[j][:, None]))
            start_extra = move[j][:, None] * ~keep_start
            groups.append(_PausableGroup(
                jobs=j, pools=p, sites=inst.site[p].astype(np.int64), first=first, width=width,
                n=inst.duration_slots[j, p].astype(np.int64),
                resume=inst.resume_slots[j].astype(np.int64), units=u, fkw=cc.facility_kw[j, p],
                obj=np.where(valid, obj, INF), t=np.where(valid, t, 0.0), start_extra=start_extra,
                unused=1.0 - cc.final_share[j, p], slot_idx=slot))
        return groups

    # ---------------------------------------------------------------------------------------
    def price(self, duals: Duals, *, keep_paths: bool = True) -> PricingResult:
        """Cheapest column of every pair and job against `duals` (projected to <= 0 first).

        Args:
            duals: dual prices; `mu` is ignored.
            keep_paths: keep the pausable DP back-pointers so `columns()` can rebuild them.
        """
        prep = self.prep
        inst = prep.inst
        J, P = inst.n_jobs, inst.n_pools
        y, lam, tab_beta, tab_pi, beta_on, pi_on = self._tables(duals)
        pair_rc = np.full((J, P), INF)
        pair_start = np.full((J, P), -1, dtype=np.int64)
        pair_group = np.full((J, P), -1, dtype=np.int64)
        pair_row = np.full((J, P), -1, dtype=np.int64)
        for blk in self.blocks:
            rc = self._block_rc(blk, y, lam, tab_beta, tab_pi, beta_on, pi_on)
            a = np.argmin(rc, axis=1)
            pair_rc[blk.jobs, blk.pool] = rc[np.arange(len(a)), a]
            pair_start[blk.jobs, blk.pool] = blk.first + a
        paths: list[_Paths] = []
        for g_i, grp in enumerate(self.groups):
            static = grp.obj - lam * grp.t
            slot_rc = static - grp.units[:, None] * y.beta[grp.pools[:, None], grp.slot_idx]
            slot_rc = slot_rc - grp.fkw[:, None] * y.pi[grp.sites[:, None], grp.slot_idx]
            last_discount = grp.unused[:, None] * np.where(np.isfinite(static), static, 0.0)
            best, step, choices = _pausable_dp(slot_rc, grp.start_extra, grp.n, grp.resume,
                                               keep_paths, last_discount)
            paths.append(_Paths(best_step=step, choices=choices))
            better = best < pair_rc[grp.jobs, grp.pools]
            pair_rc[grp.jobs[better], grp.pools[better]] = best[better]
            pair_group[grp.jobs[better], grp.pools[better]] = g_i
            pair_row[grp.jobs[better], grp.pools[better]] = np.flatnonzero(better)
            pair_start[grp.jobs[better], grp.pools[better]] = -1
        best_pool = np.argmin(pair_rc, axis=1)
        best_rc = pair_rc[np.arange(J), best_pool]
        take_unplanned = ~(best_rc < prep.penalty)
        job_rc = np.where(take_unplanned, prep.penalty, best_rc)
        job_rc = np.where(self.active, job_rc, 0.0)
        job_pool = np.where(take_unplanned | ~self.active, -1, best_pool)
        lagr = prep.frozen_cost + float(job_rc.sum()) + _coupling_term(prep, y, lam)
        return PricingResult(duals=y, pair_rc=pair_rc, pair_start=pair_start,
                             pair_group=pair_group, pair_row=pair_row, job_rc=job_rc,
                             job_pool=job_pool, lagrangian=lagr, groups=self.groups,
                             paths=paths)

    @staticmethod
    def _block_rc(blk: _ContiguousBlock, y: Duals, lam: float, tab_beta: np.ndarray | None,
                  tab_pi: np.ndarray | None, beta_on: np.ndarray, pi_on: np.ndarray
                  ) -> np.ndarray:
        """Reduced cost of every start of a block, float (R, W) (inf where not allowed)."""
        rc = blk.obj
        if lam != 0.0:
            rc = rc - lam * blk.t
        if tab_beta is not None and beta_on[blk.pool]:
            rc = rc - blk.units[:, None] * tab_beta[blk.pool].ravel()[blk.idx]
        if tab_pi is not None and pi_on[blk.site]:
            rc = rc - blk.fkw[:, None] * tab_pi[blk.site].ravel()[blk.idx]
        return rc

    def _tables(self, duals: Duals | None):
        y = (Duals.zeros(self.prep.inst.n_pools, len(self.prep.inst.site_names), self.T)
             if duals is None else duals.projected())
        lam = y.lam if np.isfinite(self.prep.budget_t) else 0.0
        beta_on = np.any(y.beta != 0.0, axis=1)
        pi_on = np.any(y.pi != 0.0, axis=1)
        tab_beta = _window_tables(y.beta, self.n_max) if beta_on.any() else None
        tab_pi = _window_tables(y.pi, self.n_max) if pi_on.any() else None
        return y, lam, tab_beta, tab_pi, beta_on, pi_on

    def block_costs(self, duals: Duals, jobs: np.ndarray
                    ) -> list[tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]]:
        """Every contiguous start of `jobs`, pool by pool, with its reduced cost at `duals`.

        Returns a list of (jobs (R,), pool, first start (R,), duration (R,), reduced cost (R, W)
        with inf where a start is not allowed)."""
        want = np.zeros(self.prep.inst.n_jobs, dtype=bool)
        want[jobs] = True
        y, lam, tab_beta, tab_pi, beta_on, pi_on = self._tables(duals)
        out = []
        for blk in self.blocks:
            rows = np.flatnonzero(want[blk.jobs])
            if rows.size:
                rc = self._block_rc(blk, y, lam, tab_beta, tab_pi, beta_on, pi_on)
                out.append((blk.jobs[rows], blk.pool, blk.first[rows], blk.n[rows],
                            rc[rows]))
        return out

    def dense(self, duals: Duals | None = None) -> DenseCandidates:
        """Every contiguous candidate as dense (job, pool, start offset) arrays.

        Args:
            duals: price the candidates at these duals (reduced costs); None: plain objective.
        """
        inst = self.prep.inst
        J, P = inst.n_jobs, inst.n_pools
        W = max((blk.obj.shape[1] for blk in self.blocks), default=1)
        y, lam, tab_beta, tab_pi, beta_on, pi_on = self._tables(duals)
        cost = np.full((J, P, W), INF)
        objective = np.full((J, P, W), INF)
        t = np.zeros((J, P, W)) if np.isfinite(self.prep.budget_t) else None
        for blk in self.blocks:
            w = blk.obj.shape[1]
            cost[blk.jobs, blk.pool, :w] = self._block_rc(blk, y, lam, tab_beta, tab_pi,
                                                          beta_on, pi_on)
            objective[blk.jobs, blk.pool, :w] = blk.obj
            if t is not None:
                t[blk.jobs, blk.pool, :w] = blk.t
        return DenseCandidates(cost=cost, objective=objective, t=t,
                               first=self.prep.win.earliest.astype(np.int64),
                               n=inst.duration_slots.astype(np.int64))

    # ---------------------------------------------------------------------------------------
    def columns(self, res: PricingResult, jobs: np.ndarray, pools: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """Slots of the cheapest column of the given pairs (each must have a finite pair_rc).

        Returns:
            (indptr (N+1,), slots (nnz,)) in the order of the pairs.
        """
        inst = self.prep.inst
        jobs = np.asarray(jobs, dtype=np.int64)
        pools = np.asarray(pools, dtype=np.int64)
        N = len(jobs)
        group = res.pair_group[jobs, pools]
        lists: list[np.ndarray | None] = [None] * N
        contiguous = group < 0
        counts = np.zeros(N, dtype=np.int64)
        counts[contiguous] = inst.duration_slots[jobs[contiguous], pools[contiguous]]
        ip_c, sl_c = contiguous_slots(res.pair_start[jobs[contiguous], pools[contiguous]],
                                      counts[contiguous])
        for g_i in np.unique(group[~contiguous]):
            at = np.flatnonzero(group == g_i)
            rows = res.pair_row[jobs[at], pools[at]]
            used = _backtrack(res.groups[g_i], res.paths[g_i], rows)
            for a, row_used in zip(at, used, strict=True):
                lists[a] = row_used
                counts[a] = len(row_used)
        indptr = np.zeros(N + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        slots = np.empty(indptr[-1], dtype=np.int32)
        c_pos = np.flatnonzero(contiguous)
        if c_pos.size:
            take = np.repeat(indptr[:-1][c_pos], counts[c_pos]) + (
                np.arange(ip_c[-1]) - np.repeat(ip_c[:-1], counts[c_pos]))
            slots[take] = sl_c
        for a in np.flatnonzero(~contiguous):
            slots[indptr[a]:indptr[a + 1]] = lists[a]
        return indptr, slots

    def top_contiguous(self, duals: Duals, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                            np.ndarray]:
        """Up to `k` cheapest contiguous (pool, start) candidates per job across all pools.

        Returns:
            (job, pool, start, rc), each (N,), sorted by job then reduced cost.
        """
        y, lam, tab_beta, tab_pi, beta_on, pi_on = self._tables(duals)
        out_j, out_p, out_s, out_rc = [], [], [], []
        for blk in self.blocks:
            rc = self._block_rc(blk, y, lam, tab_beta, tab_pi, beta_on, pi_on)
            kk = min(k, rc.shape[1])
            part = np.argpartition(rc, kk - 1, axis=1)[:, :kk] if kk < rc.shape[1] else \
                np.broadcast_to(np.arange(rc.shape[1]), rc.shape)
            vals = np.take_along_axis(rc, part, axis=1)
            ok = np.isfinite(vals)
            out_j.append(np.broadcast_to(blk.jobs[:, None], part.shape)[ok])
            out_p.append(np.full(ok.sum(), blk.pool))
            out_s.append((blk.first[:, None] + part)[ok])
            out_rc.append(vals[ok])
        if not out_j:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z, np.zeros(0)
        j = np.concatenate(out_j)
        p = np.concatenate(out_p)
        s = np.concatenate(out_s)
        rc = np.concatenate(out_rc)
        order = np.lexsort((rc, j))
        j, p, s, rc = j[order], p[order], s[order], rc[order]
        first_of_job = np.searchsorted(j, j, side="left")
        rank = np.arange(len(j)) - first_of_job
        keep = rank < k
        return j[keep], p[keep], s[keep], rc[keep]


def _coupling_term(prep: Prepared, y: Duals, lam: float) -> float:
    """y . b over the coupling rows (rows with an infinite right-hand side have a zero dual)."""
    cap = np.where(np.isfinite(prep.cap), prep.cap, 0.0)
    pcap = np.where(np.isfinite(prep.power_cap), prep.power_cap, 0.0)
    beta = np.where(np.isfinite(prep.cap), y.beta, 0.0)
    pi = np.where(np.isfinite(prep.power_cap), y.pi, 0.0)
    term = float((cap * beta).sum() + (pcap * pi).sum())
    if np.isfinite(prep.budget_t):
        term += prep.budget_t * lam
    return term


def _pausable_dp(slot_rc: np.ndarray, start_extra: np.ndarray, n: np.ndarray,
                 resume: np.ndarray, keep_paths: bool, last_discount: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Cheapest run of n work slots in each row's window, each resume costing `resume` slots.

    Args:
        slot_rc: float (N, W) reduced cost of each usable slot (inf where unusable).
        start_extra: float (N, W) extra cost when the run's first slot is that one.
        n: int (N,) work slots.
        resume: int (N,) extra occupied slots before each resumed segment.
        keep_paths: return back-pointers.
        last_discount: float (N, W) taken off when the run's last work slot is that one (the
            part of the slot after the work ends); the choices before it do not depend on it.

    Returns:
        (best cost (N,), step of the last slot (N,), (on-choice, off-choice) int8 (W, N, m+1)).
    """
    N, W = slot_rc.shape
    m = int(n.max())
    R = int(resume.max())
    rows = np.arange(N)
    on = np.full((N, m + 1), INF)
    off = np.full((N, m + 1), INF)
    off[:, 0] = 0.0
    res = np.full((max(R, 1), N, m + 1), INF)
    ch_on = np.zeros((W, N, m + 1), dtype=np.int8) if keep_paths else None
    ch_off = np.zeros((W, N, m + 1), dtype=np.int8) if keep_paths else None
    best = np.full(N, INF)
    best_step = np.full(N, -1, dtype=np.int64)
    r_idx = np.maximum(resume - 1, 0)
    no_resume = (resume == 0)[:, None]
    for k in range(W):
        c = slot_rc[:, k][:, None]
        entry = np.empty((N, m + 1))
        entry[:, 0] = off[:, 0] + slot_rc[:, k] + start_extra[:, k]
        if R:
            entry[:, 1:] = np.where(no_resume, off[:, 1:], res[r_idx, rows, 1:]) + c
        else:
            entry[:, 1:] = off[:, 1:] + c
        cont = on[:, :-1] + c
        new_on = np.full((N, m + 1), INF)
        pick_entry = entry[:, :-1] < cont
        new_on[:, 1:] = np.where(pick_entry, entry[:, :-1], cont)
        from_on = on < off
        new_off = np.where(from_on, on, off)
        if R:
            new_res = np.full_like(res, INF)
            new_res[0, :, 1:] = off[:, 1:] + c
            new_res[1:] = res[:-1] + c[None]
            limit = np.arange(1, R + 1)[:, None] <= resume[None, :]
            new_res = np.where(limit[:, :, None], new_res, INF)
            res = new_res
        if keep_paths:
            ch_on[k] = _pick_entry_full(pick_entry)
            ch_off[k] = from_on
        on, off = new_on, new_off
        done = on[rows, n] if last_discount is None else on[rows, n] - last_discount[:, k]
        improve = done < best
        best = np.where(improve, done, best)
        best_step = np.where(improve, k, best_step)
    return best, best_step, ((ch_on, ch_off) if keep_paths else None)


def _pick_entry_full(pick_entry: np.ndarray) -> np.ndarray:
    """Back-pointer row for `on` states: column w+1 says whether state w+1 came from an entry."""
    out = np.zeros((pick_entry.shape[0], pick_entry.shape[1] + 1), dtype=np.int8)
    out[:, 1:] = pick_entry
    return out


def _backtrack(grp: _PausableGroup, paths: _Paths, rows: np.ndarray) -> list[np.ndarray]:
    """Occupied slots of the DP's best run (of one pricing, `paths`) for the given rows of a
    pausable group."""
    if paths.choices is None:
        raise RuntimeError("pausable paths were not kept; price with keep_paths=True")
    ch_on, ch_off = paths.choices
    W = ch_on.shape[0]
    N = len(rows)
    used = np.zeros((N, W), dtype=bool)
    k = paths.best_step[rows].copy()
    w = grp.n[rows].copy()
    mode_on = np.ones(N, dtype=bool)
    active = k >= 0
    r = grp.resume[rows]
    idx = np.arange(N)
    while active.any():
        a = idx[active]
        on_a = mode_on[a]
        # running states: slot k used
        ron = a[on_a]
        if ron.size:
            kr, wr = k[ron], w[ron]
            used[ron, kr] = True
            entry = ch_on[kr, rows[ron], wr].astype(bool)
            cont = ron[~entry]
            k[cont] -= 1
            w[cont] -= 1
            ent = ron[entry]
            first_start = ent[w[ent] == 1]
            active[first_start] = False
            resumed = ent[w[ent] > 1]
            if resumed.size:
                rr = r[resumed]
                for back in range(1, int(rr.max(initial=0)) + 1):
                    mark = resumed[rr >= back]
                    used[mark, k[mark] - back] = True
                k[resumed] -= rr + 1
                w[resumed] -= 1
                mode_on[resumed] = False
        roff = a[~on_a]
        if roff.size:
            came_on = ch_off[k[roff], rows[roff], w[roff]].astype(bool)
            mode_on[roff[came_on]] = True
            k[roff] -= 1
        active &= k >= 0
    out = []
    for i in range(N):
        out.append((grp.first[rows[i]] + np.flatnonzero(used[i])).astype(np.int32))
    return out
