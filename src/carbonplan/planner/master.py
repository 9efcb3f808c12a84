"""The master problem over generated columns, as matrices with named row blocks.

Sets: jobs J (the free jobs of the sub-problem), pools P, slots T, sites S, columns C (generated),
C_j the columns of job j.

Variables: x_c in {0, 1} (LP: >= 0) choose column c; u_j in {0, 1} (LP: >= 0) leave job j unplanned.

Objective: min  sum_c cost_c x_c + sum_j M_j u_j  (+ a constant: the frozen jobs' cost), where
cost_c = rental + energy + carbon price x tCO2e (operational with PUE, plus embodied) + expected
spot rework + move penalty, and M_j the unplanned penalty (+ move penalty if announced).

Row blocks (each maps to a slice of rows; masked blocks keep only rows with a finite right side):

    job-assign[j]         sum_{c in C_j} x_c + u_j = 1
    pool-capacity[p, t]   sum_{c: pool p, t in c} units[j(c), p] x_c <= cap[p, t]
    site-powercap[s, t]   sum_{c: site(p(c)) = s, t in c} kw[j(c), p(c)] x_c <= cap_kw[s, t]
    org-carbonbudget      sum_c kgCO2e_c x_c <= 1000 budget  (in kg, so that solver tolerances
                                                           are tight in tonnes)

Duals are read by block name and reshaped to (pool, slot) / (site, slot) (`Duals`).
`LiveLP` keeps the LP relaxation in a highspy model and adds columns to it in place (`addCols`).

Must not import domain models, the store, signals or config; highspy is the only solver imported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from carbonplan.planner.columns import ColumnSet
from carbonplan.planner.duals import Duals
from carbonplan.planner.highs_threads import THREADS, new_model, run
from carbonplan.planner.prepare import Prepared
from carbonplan.planner.result import SolveResult, Termination

BLOCKS = ("job-assign", "pool-capacity", "site-powercap", "org-carbonbudget")
BUDGET_SCALE = 1000.0  # the budget row is written in kgCO2e; its dual is reported per tCO2e


@dataclass(frozen=True)
class RowBlock:
    """A named block of rows: rows `rows` hold the entries `index` of an array of `shape`."""

    name: str
    rows: slice
    shape: tuple[int, ...]
    index: np.ndarray  # int (len(rows),): flat position in `shape` of each row

    def scatter(self, row_values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Values of this block's rows (taken from a full row vector) as an array of `shape`."""
        out = np.full(int(np.prod(self.shape)), fill)
        out[self.index] = row_values[self.rows]
        return out.reshape(self.shape)


@dataclass(eq=False)
class MasterProblem:
    """min c.x + offset s.t. row_lower <= A x <= row_upper, col bounds, integrality.

    `A` is column-wise (CSC: `a_start` (n+1,), `a_index` (nnz,), `a_value` (nnz,)). Variables are
    the columns of `cols` listed in `var_col` and one unplanned variable per job (`var_col == -1`).
    """

    c: np.ndarray            # float (n,)
    col_lower: np.ndarray    # float (n,)
    col_upper: np.ndarray    # float (n,)
    integrality: np.ndarray  # bool (n,)
    a_start: np.ndarray      # int32 (n+1,)
    a_index: np.ndarray      # int32 (nnz,)
    a_value: np.ndarray      # float (nnz,)
    row_lower: np.ndarray    # float (m,)
    row_upper: np.ndarray    # float (m,)
    blocks: dict[str, RowBlock]
    var_job: np.ndarray      # int (n,): job of each variable
    var_col: np.ndarray      # int (n,): index into the ColumnSet, -1 = unplanned variable
    offset: float = 0.0
    meta: dict = field(default_factory=dict)

    @property
    def n_vars(self) -> int:
        return int(self.c.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.row_lower.shape[0])

    def objective_of(self, x: np.ndarray) -> float:
        return float(self.c @ x) + self.offset

    def row_activity(self, x: np.ndarray) -> np.ndarray:
        """A x, (m,)."""
        counts = np.diff(self.a_start)
        owner = np.repeat(np.arange(self.n_vars), counts)
        return np.bincount(self.a_index, weights=self.a_value * x[owner], minlength=self.n_rows)

    def duals_from_rows(self, row_dual: np.ndarray, n_jobs: int) -> Duals:
        """Row duals (m,) -> `Duals` by block name; rows absent from a block read 0."""
        beta = self.blocks["pool-capacity"].scatter(row_dual)
        pi = self.blocks["site-powercap"].scatter(row_dual)
        lam = BUDGET_SCALE * float(row_dual[self.blocks["org-carbonbudget"].rows].sum())
        mu = self.blocks["job-assign"].scatter(row_dual)
        assert mu.shape == (n_jobs,)
        return Duals(beta=beta, pi=pi, lam=lam, mu=mu)


class RowLayout:
    """Row numbering of the four blocks for a set of jobs and a mask of capacity rows."""

    def __init__(self, prep: Prepared, jobs: np.ndarray, cap_rows: np.ndarray | None = None,
                 power_rows: np.ndarray | None = None, budget: bool | None = None,
                 cap: np.ndarray | None = None, power_cap: np.ndarray | None = None,
                 budget_t: float | None = None) -> None:
        inst = prep.inst
        J, P, T, S = inst.n_jobs, inst.n_pools, inst.n_slots, len(inst.site_names)
        self.cap = prep.cap if cap is None else cap
        self.power_cap = prep.power_cap if power_cap is None else power_cap
        self.budget_t = prep.budget_t if budget_t is None else budget_t
        cap_mask = np.isfinite(self.cap) if cap_rows is None else (cap_rows & np.isfinite(self.cap))
        pw_mask = (np.isfinite(self.power_cap) if power_rows is None
                   else (power_rows & np.isfinite(self.power_cap)))
        use_budget = np.isfinite(self.budget_t) if budget is None else (
            budget and np.isfinite(self.budget_t))
        self.jobs = np.asarray(jobs, dtype=np.int64)
        n_j = len(self.jobs)
        self.job_row = np.full(J, -1, dtype=np.int64)
        self.job_row[self.jobs] = np.arange(n_j)
        cap_idx = np.flatnonzero(cap_mask.ravel())
        pw_idx = np.flatnonzero(pw_mask.ravel())
        self.cap_row = np.full(P * T, -1, dtype=np.int64)
        self.cap_row[cap_idx] = n_j + np.arange(len(cap_idx))
        base = n_j + len(cap_idx)
        self.pw_row = np.full(S * T, -1, dtype=np.int64)
        self.pw_row[pw_idx] = base + np.arange(len(pw_idx))
        base += len(pw_idx)
        self.budget_row = base if use_budget else -1
        self.n_rows = base + (1 if use_budget else 0)
        self.blocks = {
            "job-assign": RowBlock("job-assign", slice(0, n_j), (J,), self.jobs),
            "pool-capacity": RowBlock("pool-capacity", slice(n_j, n_j + len(cap_idx)), (P, T),
                                      cap_idx),
            "site-powercap": RowBlock("site-powercap", slice(n_j + len(cap_idx), base), (S, T),
                                      pw_idx),
            "org-carbonbudget": RowBlock("org-carbonbudget", slice(base, self.n_rows), (),
                                         np.zeros(self.n_rows - base, dtype=np.int64)),
        }
        self.row_lower = np.concatenate([np.ones(n_j), np.full(self.n_rows - n_j, -np.inf)])
        self.row_upper = np.concatenate([
            np.ones(n_j), self.cap.ravel()[cap_idx], self.power_cap.ravel()[pw_idx],
            [BUDGET_SCALE * self.budget_t] if use_budget else []])
        self.T = T

    def column_entries(self, prep: Prepared, cols: ColumnSet, which: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSC entries of the columns `which` of `cols` in this row layout.

        Returns:
            (start (N+1,) int32, index (nnz,) int32, value (nnz,) float).
        """
        inst, cc = prep.inst, prep.cc
        which = np.asarray(which, dtype=np.int64)
        T = self.T
        job = cols.job[which].astype(np.int64)
        pool = cols.pool[which].astype(np.int64)
        counts = np.diff(cols.indptr)[which]
        owner = np.repeat(np.arange(len(which)), counts)
        take = np.repeat(cols.indptr[:-1][which], counts) + (
            np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        t = cols.slots[take].astype(np.int64)
        jo, po = job[owner], pool[owner]
        cap_r = self.cap_row[po * T + t]
        pw_r = self.pw_row[inst.site[po].astype(np.int64) * T + t]
        parts_owner = [np.arange(len(which)), owner, owner]
        parts_row = [self.job_row[job], cap_r, pw_r]
        parts_val = [np.ones(len(which)), cc.units[jo, po], cc.facility_kw[jo, po]]
        if self.budget_row >= 0:
            parts_owner.append(np.arange(len(which)))
            parts_row.append(np.full(len(which), self.budget_row))
            parts_val.append(BUDGET_SCALE * cols.t_co2e[which])
        o = np.concatenate(parts_owner)
        r = np.concatenate(parts_row)
        v = np.concatenate(parts_val)
        keep = r >= 0
        o, r, v = o[keep], r[keep], v[keep]
        order = np.lexsort((r, o))
        o, r, v = o[order], r[order], v[order]
        start = np.zeros(len(which) + 1, dtype=np.int64)
        np.cumsum(np.bincount(o, minlength=len(which)), out=start[1:])
        return start.astype(np.int32), r.astype(np.int32), v


def build_master(prep: Prepared, cols: ColumnSet, which: np.ndarray, layout: RowLayout,
                 *, integer: bool = True, offset: float | None = None) -> MasterProblem:
    """The master over columns `which` of `cols` plus one unplanned variable per layout job."""
    which = np.asarray(which, dtype=np.int64)
    start, index, value = layout.column_entries(prep, cols, which)
    n_j = len(layout.jobs)
    n_c = len(which)
    u_start = start[-1] + np.arange(1, n_j + 1)
    a_start = np.concatenate([start, u_start]).astype(np.int32)
    a_index = np.concatenate([index, np.arange(n_j)]).astype(np.int32)
    a_value = np.concatenate([value, np.ones(n_j)])
    c = np.concatenate([cols.objective[which], prep.penalty[layout.jobs]])
    n = n_c + n_j
    return MasterProblem(
        c=c, col_lower=np.zeros(n), col_upper=np.ones(n) if integer else np.full(n, np.inf),
        integrality=np.full(n, integer), a_start=a_start, a_index=a_index, a_value=a_value,
        row_lower=layout.row_lower.copy(), row_upper=layout.row_upper.copy(),
        blocks=layout.blocks, var_job=np.concatenate([cols.job[which], layout.jobs]),
        var_col=np.concatenate([which, np.full(n_j, -1)]),
        offset=prep.frozen_cost if offset is None else offset)


# -- the live LP relaxation ----------------------------------------------------------------------

_LP_STATUS = {
    highspy.HighsModelStatus.kOptimal: Termination.OPTIMAL,
    highspy.HighsModelStatus.kInfeasible: Termination.INFEASIBLE,
    highspy.HighsModelStatus.kTimeLimit: Termination.TIME_LIMIT,
    highspy.HighsModelStatus.kIterationLimit: Termination.TIME_LIMIT,
    highspy.HighsModelStatus.kInterrupt: Termination.TIME_LIMIT,
    highspy.HighsModelStatus.kUnknown: Termination.ERROR,
}


@dataclass(eq=False)
class LPSolution:
    """An LP master solve: status, objective, duals by block and column values."""

    result: SolveResult
    duals: Duals
    x_cols: np.ndarray        # float (n LP columns,): values of the columns in the LP
    x_unplanned: np.ndarray   # float (J,): values of the unplanned variables (0 off the master)
    lp_cols: np.ndarray       # int: ColumnSet index of each LP column


class LiveLP:
    """The LP relaxation of the master in one highspy model; columns are added in place."""

    def __init__(self, prep: Prepared, layout: RowLayout, *, threads: int = THREADS) -> None:
        self.prep = prep
        self.layout = layout
        h = new_model(threads)
        m = layout.n_rows
        lo = np.where(np.isfinite(layout.row_lower), layout.row_lower, -highspy.kHighsInf)
        up = np.where(np.isfinite(layout.row_upper), layout.row_upper, highspy.kHighsInf)
        h.addRows(m, lo, up, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
        n_j = len(layout.jobs)
        h.addCols(n_j, prep.penalty[layout.jobs], np.zeros(n_j), np.full(n_j, highspy.kHighsInf),
                  n_j, np.arange(n_j, dtype=np.int32), np.arange(n_j, dtype=np.int32),
                  np.ones(n_j))
        self.h = h
        self.n_unplanned = n_j
        self.lp_cols = np.zeros(0, dtype=np.int64)  # ColumnSet index of LP columns n_j..

    def add_columns(self, cols: ColumnSet, which: np.ndarray) -> None:
        """Add columns `which` of `cols` (already in the set) to the live LP."""
        which = np.setdiff1d(np.asarray(which, dtype=np.int64), self.lp_cols)
        if which.size == 0:
            return
        start, index, value = self.layout.column_entries(self.prep, cols, which)
        n = len(which)
        self.h.addCols(n, cols.objective[which], np.zeros(n), np.full(n, highspy.kHighsInf),
                       len(index), start[:-1].astype(np.int32), index, value)
        self.lp_cols = np.concatenate([self.lp_cols, which])

    def drop_columns(self, keep: np.ndarray) -> None:
        """Remove every LP column whose ColumnSet index is not in `keep`."""
        mask = ~np.isin(self.lp_cols, keep)
        if not mask.any():
            return
        drop = (self.n_unplanned + np.flatnonzero(mask)).astype(np.int32)
        self.h.deleteCols(len(drop), drop)
        self.lp_cols = self.lp_cols[~mask]

    def solve(self, *, method: str = "simplex", time_limit: float = np.inf) -> LPSolution:
        """Solve the LP (`simplex` warm-started, or `ipm` without crossover)."""
        h = self.h
        t = time.perf_counter()
        if method == "ipm":
            h.setOptionValue("solver", "ipm")
            h.setOptionValue("run_crossover", "off")
        else:
            h.setOptionValue("solver", "simplex")
        if np.isfinite(time_limit):
            # HiGHS counts its time limit from the creation of the model, across runs
            h.setOptionValue("time_limit", float(h.getRunTime() + max(time_limit, 0.01)))
        run(h)
        status = h.getModelStatus()
        term = _LP_STATUS.get(status, Termination.ERROR)
        if term is Termination.OPTIMAL and h.getInfo().primal_solution_status != 2:
            term = Termination.ERROR
        info = h.getInfo()
        sol = h.getSolution()
        J = self.prep.n_jobs
        row_dual = np.asarray(sol.row_dual)
        col_value = np.asarray(sol.col_value)
        n_rows = self.layout.n_rows
        if row_dual.shape[0] != n_rows:
            row_dual = np.zeros(n_rows)
        duals = _duals_from_layout(self.layout, row_dual, J)
        x_unpl = np.zeros(J)
        if col_value.size:
            x_unpl[self.layout.jobs] = col_value[:self.n_unplanned]
            x_cols = col_value[self.n_unplanned:]
        else:
            x_cols = np.zeros(len(self.lp_cols))
        res = SolveResult(termination=term, objective=float(info.objective_function_value)
                          + self.prep.frozen_cost, iterations=int(info.simplex_iteration_count
                                                                  + info.ipm_iteration_count),
                          columns=len(self.lp_cols), seconds=time.perf_counter() - t,
                          message=h.modelStatusToString(status))
        return LPSolution(result=res, duals=duals, x_cols=x_cols, x_unplanned=x_unpl,
                          lp_cols=self.lp_cols.copy())


def _duals_from_layout(layout: RowLayout, row_dual: np.ndarray, n_jobs: int) -> Duals:
    b = layout.blocks
    return Duals(beta=b["pool-capacity"].scatter(row_dual), pi=b["site-powercap"].scatter(row_dual),
                 lam=BUDGET_SCALE * float(row_dual[b["org-carbonbudget"].rows].sum()),
                 mu=b["job-assign"].scatter(row_dual))
