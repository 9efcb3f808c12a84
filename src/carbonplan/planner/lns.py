"""Large-neighbourhood search over the integer master: re-optimize a few dozen jobs of one pool and
time window (or one time window across pools, or the jobs that pay most above their Lagrangian
minimum) as a small exact MIP, with every other job fixed, through the chosen backend.

The incumbent is a column per job (or none); the residual pool capacity, power and budget are kept
up to date. Each sub-problem is a `MasterProblem` over the freed jobs' candidate columns with the
capacity left by the fixed jobs, warm-started from the incumbent, so a sub-solve can only keep or
improve the plan. Neighbourhood kinds are chosen adaptively by their recent success.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from carbonplan.planner.backends.base import Backend
from carbonplan.planner.columns import ColumnSet, Schedule, contiguous_slots
from carbonplan.planner.duals import Duals
from carbonplan.planner.greedy import Residual, best_fit
from carbonplan.planner.master import MasterProblem, RowLayout, build_master
from carbonplan.planner.prepare import Prepared
from carbonplan.planner.pricing import DenseCandidates
from carbonplan.planner.result import SolveResult

KINDS = ("pool-window", "time-window", "expensive")


@dataclass
class LNSStats:
    """Counters of one search."""

    iterations: int = 0
    improvements: int = 0
    seconds: float = 0.0
    stale: int = 0        # improving answers dropped: the plan had changed under them
    by_kind: dict[str, list[int]] = field(default_factory=lambda: {k: [0, 0] for k in KINDS})


class Incumbent:
    """A plan as one column per job (-1 = unplanned) with its residual resources."""

    def __init__(self, prep: Prepared, cols: ColumnSet, chosen: np.ndarray) -> None:
        self.prep = prep
        self.cols = cols
        self.chosen = np.asarray(chosen, dtype=np.int64).copy()
        self.res = Residual.of(prep, self.schedule(), t_co2e=self._t(self.chosen))

    def _t(self, chosen: np.ndarray) -> float:
        return float(self.cols.t_co2e[chosen[chosen >= 0]].sum())

    def schedule(self) -> Schedule:
        """The plan of the free jobs (frozen jobs are not included)."""
        return Schedule.from_columns(self.prep.n_jobs, self.cols, self.chosen)

    @property
    def objective(self) -> float:
        c = self.chosen
        planned = c >= 0
        free = self.prep.free
        return float(self.prep.frozen_cost + self.cols.objective[c[planned]].sum()
                     + self.prep.penalty[~planned & free].sum())

    def set_jobs(self, jobs: np.ndarray, new_cols: np.ndarray) -> None:
        """Move `jobs` to columns `new_cols` (-1 = unplanned), updating the residuals."""
        for j, c_new in zip(jobs, new_cols, strict=True):
            c_old = self.chosen[j]
            if c_old == c_new:
                continue
            if c_old >= 0:
                self.res.take(self.prep, int(j), int(self.cols.pool[c_old]),
                              self.cols.column_slots(c_old), float(self.cols.t_co2e[c_old]),
                              sign=-1.0)
            if c_new >= 0:
                self.res.take(self.prep, int(j), int(self.cols.pool[c_new]),
                              self.cols.column_slots(c_new), float(self.cols.t_co2e[c_new]))
            self.chosen[j] = c_new


class LNS:
    """The search (see the module docstring).

    Args:
        prep: the prepared instance.
        cols: every candidate column (must contain the incumbent's columns).
        cand_ptr, cand_idx: CSR of each job's candidate column indices.
        duals: the best duals (to find priced holes and expensive jobs).
        job_rc: float (J,) each job's Lagrangian minimum at `duals`.
        backend: solves the sub-MIPs.
    """

    def __init__(self, prep: Prepared, cols: ColumnSet, cand_ptr: np.ndarray,
                 cand_idx: np.ndarray, incumbent: Incumbent, duals: Duals, job_rc: np.ndarray,
                 backend: Backend, *, seed: int = 0, max_jobs: int = 60, window: int = 8,
                 sub_time_limit: float = 1.0, sub_rel_gap: float = 0.0,
                 dense: DenseCandidates | None = None) -> None:
        self.prep = prep
        self.cols = cols
        self.cand_ptr = cand_ptr
        self.cand_idx = cand_idx
        self.inc = incumbent
        self.duals = duals.projected()
        self.job_rc = job_rc
        self.backend = backend
        self.rng = np.random.default_rng(seed)
        self.max_jobs = max_jobs
        self.window = window
        self.sub_time_limit = sub_time_limit
        self.sub_rel_gap = sub_rel_gap
        self.dense = dense
        self.focus: tuple[int, int, int] | None = None  # (pool, from, to) of the last move
        self.stats = LNSStats()
        self.weights = {k: 1.0 for k in KINDS}
        self.col_start = np.zeros(0, dtype=np.int64)
        self.col_end = np.zeros(0, dtype=np.int64)
        self.col_rc = np.zeros(0)
        self._refresh()
        self.cand_job = np.repeat(np.arange(prep.n_jobs), np.diff(cand_ptr))
        self.free_jobs = np.flatnonzero(prep.free)

    def _refresh(self) -> None:
        """Extend the per-column caches to columns added since the last call."""
        n_old, n = len(self.col_rc), len(self.cols)
        if n == n_old:
            return
        new = np.arange(n_old, n)
        self.col_start = np.concatenate([self.col_start, self.cols.start()[new]])
        self.col_end = np.concatenate([self.col_end, self.cols.end()[new]])
        self.col_rc = np.concatenate([self.col_rc, column_reduced_costs(
            self.prep, self.cols, new, self.duals)])

    def current_cost(self) -> np.ndarray:
        """Objective $ of each job's current placement (its penalty when unplanned), (J,)."""
        c = self.inc.chosen
        if len(self.cols) == 0:
            return self.prep.penalty.copy()
        return np.where(c >= 0, self.cols.objective[np.maximum(c, 0)], self.prep.penalty)

    def _focus_savings(self, p: int, a: int, b: int) -> np.ndarray:
        """How much each job would save by its cheapest run on pool p overlapping [a, b), (J,).

        Ignores capacity: it ranks the jobs that could fill free capacity there.
        """
        d = self.dense
        if d is None:
            return self._excess()
        W = d.objective.shape[2]
        start = d.first[:, None] + np.arange(W)[None, :]
        near = (start < b) & (start + d.n[:, p][:, None] > a)
        best = np.where(near, d.objective[:, p, :], np.inf).min(axis=1)
        out = self.current_cost() - best
        return np.where(np.isfinite(out) & self.prep.free, out, 0.0)

    def focus_columns(self, jobs: np.ndarray) -> np.ndarray:
        """Every contiguous column of `jobs` on the focus pool overlapping the focus window."""
        if self.focus is None or self.dense is None:
            return np.zeros(0, dtype=np.int64)
        p, a, b = self.focus
        d = self.dense
        n = d.n[jobs, p]
        W = d.cost.shape[2]
        start = d.first[jobs][:, None] + np.arange(W)[None, :]
        ok = (np.isfinite(d.objective[jobs, p, :]) & (start < b) & (start + n[:, None] > a))
        r, k = np.nonzero(ok)
        if r.size == 0:
            return np.zeros(0, dtype=np.int64)
        jj = jobs[r]
        indptr, slots = contiguous_slots(start[r, k], n[r])
        idx = self.cols.add(self.prep.inst, self.prep.cc, jj, np.full(jj.size, p), indptr,
                            slots)
        self._refresh()
        return idx

    # -- neighbourhoods ------------------------------------------------------------------------
    def _current_span(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self.inc.chosen
        planned = c >= 0
        inst = self.prep.inst
        if len(self.cols) == 0:
            return inst.release.copy(), inst.deadline.copy(), np.full(inst.n_jobs, -1)
        start = np.where(planned, self.col_start[np.maximum(c, 0)], inst.release)
        end = np.where(planned, self.col_end[np.maximum(c, 0)], inst.deadline)
        pool = np.where(planned, self.cols.pool[np.maximum(c, 0)], -1)
        return start, end, pool

    def _excess(self) -> np.ndarray:
        c = self.inc.chosen
        if len(self.cols) == 0:
            return np.zeros(self.prep.n_jobs)
        now = np.where(c >= 0, self.col_rc[np.maximum(c, 0)], self.prep.penalty)
        return np.where(self.prep.free, np.maximum(now - self.job_rc, 0.0), 0.0)

    def _pick(self, candidates: np.ndarray, priority: np.ndarray) -> np.ndarray:
        if candidates.size <= self.max_jobs:
            return candidates
        noise = self.rng.random(candidates.size)
        score = priority[candidates] * (0.5 + noise) + noise * 1e-9
        return candidates[np.argsort(-score)[:self.max_jobs]]

    def neighbourhood(self, kind: str) -> np.ndarray:
        """Jobs to free for one move of the given kind."""
        inst = self.prep.inst
        T, P = inst.n_slots, inst.n_pools
        L = min(self.window, T)
        start, end, pool = self._current_span()
        excess = self._excess()
        if kind == "pool-window":
            holes = np.clip(self.inc.res.cap, 0.0, None)
            holes = np.where(np.isfinite(holes), holes, 0.0) * (-self.duals.beta) + 1e-9
            flat = holes.ravel() / holes.sum()
            cell = int(self.rng.choice(P * T, p=flat))
            p, t = divmod(cell, T)
            a = int(np.clip(t - L // 2, 0, T - L))
            in_pool = (pool == p) & (start < a + L) & (end > a)
            mine = np.flatnonzero(in_pool & self.prep.free)
            self.focus = (p, a, a + L)
            keep_mine = self._pick(mine, np.ones(inst.n_jobs))[: self.max_jobs // 2 + 1]
            rest = self.max_jobs - keep_mine.size
            savings = self._focus_savings(p, a, a + L)
            savings[in_pool] = 0.0
            others = np.flatnonzero(savings > 1e-9)
            if others.size > rest:
                score = savings[others] * (0.5 + self.rng.random(others.size))
                others = others[np.argsort(-score)[:rest]]
            return np.concatenate([keep_mine, others])
        self.focus = None
        if kind == "time-window":
            a = int(self.rng.integers(0, T - L + 1))
            over = np.flatnonzero((start < a + L) & (end > a) & self.prep.free)
            return self._pick(over, excess + 1.0)
        # expensive: jobs paying most above their minimum, and the jobs in their way
        total = excess[self.free_jobs]
        if total.sum() <= 0:
            return self.neighbourhood("time-window")
        prob = total / total.sum()
        seeds = self.rng.choice(self.free_jobs, size=min(5, int((prob > 0).sum())),
                                replace=False, p=prob)
        near = np.union1d(seeds, self.in_the_way(seeds))
        return self._pick(near[self.prep.free[near]], excess + 1.0)

    def in_the_way(self, jobs: np.ndarray, per_job: int = 1) -> np.ndarray:
        """The jobs now placed where `jobs` would go on their `per_job` cheapest candidates
        (by reduced cost at the search's duals), sorted and unique; free or not."""
        start, end, pool = self._current_span()
        hits = [np.zeros(0, dtype=np.int64)]
        for j in jobs:
            cand = self.cand_idx[self.cand_ptr[j]:self.cand_ptr[j + 1]]
            for c in cand[np.argsort(self.col_rc[cand], kind="stable")[:per_job]]:
                p, a, b = self.cols.pool[c], self.col_start[c], self.col_end[c]
                hits.append(np.flatnonzero((pool == p) & (start < b) & (end > a)))
        return np.unique(np.concatenate(hits))

    # -- one move --------------------------------------------------------------------------------
    def improve(self, jobs: np.ndarray) -> float:
        """Re-optimize `jobs` exactly over their candidates; returns the objective gain ($)."""
        move = self.build(jobs)
        if move is None:
            return 0.0
        res = self.backend.solve(move.master, time_limit=self.sub_time_limit,
                                 rel_gap=self.sub_rel_gap, warm_start=move.x0)
        return self.apply(move, res)

    def build(self, jobs: np.ndarray) -> Move | None:
        """The sub-master of `jobs` (candidates, focus columns, current columns) with the
        capacity the other jobs leave, warm-started from the incumbent; None if `jobs` is empty.
        """
        prep, cols, inc = self.prep, self.cols, self.inc
        inst, cc = prep.inst, prep.cc
        jobs = np.unique(np.asarray(jobs, dtype=np.int64))
        if jobs.size == 0:
            return None
        cur = inc.chosen[jobs]
        which = np.concatenate([self.cand_idx[self.cand_ptr[j]:self.cand_ptr[j + 1]]
                                for j in jobs] + [self.focus_columns(jobs), cur[cur >= 0]])
        which = np.unique(which)
        # capacity with the freed jobs given back
        cap = inc.res.cap.copy()
        power = inc.res.power.copy()
        budget = inc.res.budget
        T = inst.n_slots
        for j, c in zip(jobs, cur, strict=True):
            if c >= 0:
                s = cols.column_slots(c)
                p = cols.pool[c]
                cap[p, s] += cc.units[j, p]
                power[inst.site[p], s] += cc.facility_kw[j, p]
                budget += cols.t_co2e[c]
        counts = np.diff(cols.indptr)[which]
        take = np.repeat(cols.indptr[:-1][which], counts) + (
            np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        slot = cols.slots[take].astype(np.int64)
        pool = np.repeat(cols.pool[which], counts).astype(np.int64)
        touched = np.zeros(inst.n_pools * T, dtype=bool)
        touched[pool * T + slot] = True
        touched_pw = np.zeros(len(inst.site_names) * T, dtype=bool)
        touched_pw[inst.site[pool].astype(np.int64) * T + slot] = True
        layout = RowLayout(prep, jobs, cap_rows=touched.reshape(inst.n_pools, T),
                           power_rows=touched_pw.reshape(len(inst.site_names), T),
                           cap=np.maximum(cap, 0.0), power_cap=np.maximum(power, 0.0),
                           budget_t=max(budget, 0.0))
        master = build_master(prep, cols, which, layout, integer=True, offset=0.0)
        pos = np.full(len(cols), -1, dtype=np.int64)
        pos[which] = np.arange(len(which))
        x0 = np.zeros(master.n_vars)
        planned = cur >= 0
        x0[pos[cur[planned]]] = 1.0
        x0[len(which) + np.flatnonzero(~planned)] = 1.0
        return Move(jobs=jobs, cur=cur, which=which, job_row=layout.job_row, master=master,
                    x0=x0)

    def apply(self, move: Move, res: SolveResult) -> float:
        """Adopt the sub-solve's answer when it is cheaper and still fits; returns the gain ($).

        A move built from an older incumbent (another move was applied while it was solved) is
        adopted only if its jobs are where it found them and its new columns fit what is left
        now, so the plan stays feasible and never gets worse.
        """
        if not res.has_solution:
            return 0.0
        master, jobs, which = move.master, move.jobs, move.which
        before = float(master.c @ move.x0)
        x = np.asarray(res.solution)
        after = float(master.c @ x)
        if not after < before - 1e-7 * max(1.0, abs(before)):
            return 0.0
        if not np.array_equal(self.inc.chosen[jobs], move.cur):
            self.stats.stale += 1
            return 0.0
        new = np.full(jobs.size, -1, dtype=np.int64)
        on = np.flatnonzero(x[:len(which)] > 0.5)
        new[move.job_row[self.cols.job[which[on]]]] = which[on]
        inc, cols, prep = self.inc, self.cols, self.prep
        inc.set_jobs(jobs, np.full(jobs.size, -1, dtype=np.int64))
        for j, c in zip(jobs, new, strict=True):
            if c >= 0 and not inc.res.fits(prep, int(j), int(cols.pool[c]),
                                           cols.column_slots(c), float(cols.t_co2e[c])):
                inc.set_jobs(jobs, move.cur)
                self.stats.stale += 1
                return 0.0
            if c >= 0:
                inc.set_jobs(np.array([j]), np.array([c]))
        return before - after

    def one_opt(self, *, time_limit: float, sweeps: int = 8, min_gain: float = 1e-3) -> int:
        """Move single jobs to their cheapest fitting contiguous column (true objective) while
        that lowers the objective, most expensive jobs first; sweep again until a sweep saves
        less than `min_gain` of the objective (on 1,000 x 12 x 72 the third sweep saves 6-13 $
        and the later ones under 1 $, 0.2 s each, which the search spends better). Returns the
        number of moves."""
        if self.dense is None:
            return 0
        t0 = time.perf_counter()
        prep, cols, inc = self.prep, self.cols, self.inc
        moves = 0
        for _ in range(sweeps):
            moved = 0
            before = inc.objective
            for j in np.argsort(-self.current_cost()):
                if time.perf_counter() - t0 > time_limit:
                    break
                if not prep.free[j]:  # frozen: stays, and the sweep goes on
                    continue
                c_old = int(inc.chosen[j])
                now = cols.objective[c_old] if c_old >= 0 else prep.penalty[j]
                jj = np.array([j])
                inc.set_jobs(jj, np.array([-1]))
                value, p, s = best_fit(prep, self.dense, int(j), inc.res, objective=True)
                if p >= 0 and value < now - 1e-9 and value < prep.penalty[j]:
                    n = int(prep.inst.duration_slots[j, p])
                    c = cols.add(prep.inst, prep.cc, jj, np.array([p]),
                                 np.array([0, n]), np.arange(s, s + n, dtype=np.int32))
                    inc.set_jobs(jj, c)
                    moved += 1
                else:
                    inc.set_jobs(jj, np.array([c_old]))
            moves += moved
            if moved == 0 or before - inc.objective < min_gain * abs(before):
                break
        self._refresh()
        return moves

    def _kind(self) -> str:
        kinds = list(self.weights)
        w = np.array([self.weights[k] for k in kinds])
        return kinds[int(self.rng.choice(len(kinds), p=w / w.sum()))]

    def _record(self, kind: str, gain: float) -> None:
        self.stats.iterations += 1
        self.stats.by_kind[kind][0] += 1
        if gain > 0:
            self.stats.improvements += 1
            self.stats.by_kind[kind][1] += 1
        self.weights[kind] = 0.8 * self.weights[kind] + 0.2 * (1.0 if gain > 0 else 0.1)
        self.weights[kind] = max(self.weights[kind], 0.05)

    def run(self, *, time_limit: float, target: float = -np.inf,
            on_iteration: Callable[[int, float], None] | None = None,
            workers: int = 1) -> LNSStats:
        """Improve until the incumbent objective reaches `target` or time runs out.

        With `workers` > 1, that many sub-MIPs are solved at once in threads (the solver
        releases the GIL), on neighbourhoods that share no job; each answer is adopted only if
        it still fits (`apply`); a sub-MIP's time limit is capped at the time left.
        """
        t0 = time.perf_counter()
        if self.free_jobs.size <= self.max_jobs:
            # one neighbourhood holds every job: a single exact solve is the whole search
            self.improve(self.free_jobs)
            self.stats.iterations += 1
            self.stats.seconds += time.perf_counter() - t0
            return self.stats

        def left() -> float:
            return time_limit - (time.perf_counter() - t0)

        if workers <= 1:
            while left() > 0 and self.inc.objective > target:
                kind = self._kind()
                self._record(kind, self.improve(self.neighbourhood(kind)))
                if on_iteration:
                    on_iteration(self.stats.iterations, self.inc.objective)
            self.stats.seconds += time.perf_counter() - t0
            return self.stats
        busy = np.zeros(self.prep.n_jobs, dtype=bool)
        flight: dict[Future, tuple[Move, str]] = {}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            while flight or (left() > 0 and self.inc.objective > target):
                while (len(flight) < workers and left() > min(self.sub_time_limit, 0.05)
                       and self.inc.objective > target):
                    kind = self._kind()
                    jobs = self.neighbourhood(kind)
                    move = self.build(jobs[~busy[jobs]])
                    if move is None:
                        self._record(kind, 0.0)
                        continue
                    busy[move.jobs] = True
                    fut = pool.submit(self.backend.solve, move.master,
                                      time_limit=min(self.sub_time_limit, max(left(), 0.01)),
                                      rel_gap=self.sub_rel_gap, warm_start=move.x0)
                    flight[fut] = (move, kind)
                if not flight:
                    break
                done, _ = wait(list(flight), return_when=FIRST_COMPLETED)
                for fut in done:
                    move, kind = flight.pop(fut)
                    busy[move.jobs] = False
                    self._record(kind, self.apply(move, fut.result()))
                    if on_iteration:
                        on_iteration(self.stats.iterations, self.inc.objective)
        self.stats.seconds += time.perf_counter() - t0
        return self.stats


@dataclass(eq=False)
class Move:
    """A built sub-master: the freed jobs, their columns when built, and the warm start."""

    jobs: np.ndarray      # int (n,) freed jobs (sorted)
    cur: np.ndarray       # int (n,) their columns when built (-1: unplanned)
    which: np.ndarray     # int (k,) candidate columns (variables 0..k-1 of the master)
    job_row: np.ndarray   # int (J,) row of each job in the master (-1: not freed)
    master: MasterProblem
    x0: np.ndarray        # float (k + n,) the incumbent as a 0/1 vector


def column_reduced_costs(prep: Prepared, cols: ColumnSet, which: np.ndarray,
                         duals: Duals) -> np.ndarray:
    """rc = objective - lam t - units sum beta - facility_kw sum pi, for columns `which` (N,).

    (The job-assign dual is not subtracted.)
    """
    inst, cc = prep.inst, prep.cc
    y = duals.projected()
    which = np.asarray(which, dtype=np.int64)
    counts = np.diff(cols.indptr)[which]
    take = np.repeat(cols.indptr[:-1][which], counts) + (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    slot = cols.slots[take]
    job = cols.job[which]
    pool = cols.pool[which]
    pp = np.repeat(pool, counts)
    beta_sum = np.bincount(np.repeat(np.arange(len(which)), counts), weights=y.beta[pp, slot],
                           minlength=len(which))
    pi_sum = np.bincount(np.repeat(np.arange(len(which)), counts),
                         weights=y.pi[inst.site[pp], slot], minlength=len(which))
    lam = y.lam if np.isfinite(prep.budget_t) else 0.0
    return (cols.objective[which] - lam * cols.t_co2e[which]
            - cc.units[job, pool] * beta_sum - cc.facility_kw[job, pool] * pi_sum)
