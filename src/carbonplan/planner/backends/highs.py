"""The default backend: HiGHS through highspy, model passed in one call (CSC matrix).

Native statuses map to `Termination` by `STATUS`; a solve stopped by its time limit reads
`time_limit` even when it holds an incumbent. Warm starts go through `setSolution`.

An answer is checked before it is believed: the objective HiGHS reports must be that of the
solution it returns. HiGHS 1.16.0 breaks this on some warm-started MIPs with presolve (it returns
the warm start itself as "optimal" with a lower objective; tests/planner/test_backends.py has
one), so a warm-started solve whose answer disagrees is re-solved cold, and a cold one that
disagrees reads `error`.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from carbonplan.planner.backends.base import Capabilities, finalize
from carbonplan.planner.highs_threads import THREADS, new_model, run
from carbonplan.planner.master import MasterProblem
from carbonplan.planner.result import SolveResult, Termination

MS = highspy.HighsModelStatus
STATUS: dict[object, Termination] = {
    MS.kOptimal: Termination.OPTIMAL,
    MS.kInfeasible: Termination.INFEASIBLE,
    MS.kTimeLimit: Termination.TIME_LIMIT,
    MS.kIterationLimit: Termination.TIME_LIMIT,
    MS.kSolutionLimit: Termination.TIME_LIMIT,
    MS.kInterrupt: Termination.TIME_LIMIT,
    MS.kHighsInterrupt: Termination.TIME_LIMIT,
    MS.kObjectiveBound: Termination.ERROR,
    MS.kObjectiveTarget: Termination.ERROR,
    MS.kUnboundedOrInfeasible: Termination.INFEASIBLE,
    MS.kUnbounded: Termination.ERROR,
    MS.kMemoryLimit: Termination.ERROR,
    MS.kUnknown: Termination.ERROR,
    MS.kNotset: Termination.ERROR,
    MS.kLoadError: Termination.ERROR,
    MS.kModelError: Termination.ERROR,
    MS.kPresolveError: Termination.ERROR,
    MS.kSolveError: Termination.ERROR,
    MS.kPostsolveError: Termination.ERROR,
    MS.kModelEmpty: Termination.OPTIMAL,
}


def to_highs_lp(master: MasterProblem) -> highspy.HighsLp:
    """The master as a HighsLp (column-wise matrix, integrality from `master.integrality`)."""
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_ = master.n_vars
    lp.num_row_ = master.n_rows
    lp.col_cost_ = master.c
    lp.col_lower_ = master.col_lower
    lp.col_upper_ = np.where(np.isfinite(master.col_upper), master.col_upper, inf)
    lp.row_lower_ = np.where(np.isfinite(master.row_lower), master.row_lower, -inf)
    lp.row_upper_ = np.where(np.isfinite(master.row_upper), master.row_upper, inf)
    lp.offset_ = float(master.offset)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = master.n_vars
    lp.a_matrix_.num_row_ = master.n_rows
    lp.a_matrix_.start_ = master.a_start
    lp.a_matrix_.index_ = master.a_index
    lp.a_matrix_.value_ = master.a_value
    if master.integrality.any():
        kind = np.where(master.integrality, int(highspy.HighsVarType.kInteger),
                        int(highspy.HighsVarType.kContinuous))
        lp.integrality_ = [highspy.HighsVarType(int(k)) for k in kind]
    return lp


class HighsBackend:
    """HiGHS MIP through highspy."""

    name = "highs"
    capabilities = Capabilities(warm_start=True, reports_bound=True)

    def __init__(self, threads: int = THREADS, presolve: bool = True) -> None:
        self.threads = threads
        self.presolve = presolve

    def solve(self, master: MasterProblem, *, time_limit: float, rel_gap: float,
              warm_start: np.ndarray | None = None) -> SolveResult:
        t = time.perf_counter()
        res = self._solve(master, time_limit=time_limit, rel_gap=rel_gap, warm_start=warm_start)
        left = time_limit - (time.perf_counter() - t)
        if _misreported(master, res) is not None and warm_start is not None and left > 0:
            res = self._solve(master, time_limit=left, rel_gap=rel_gap, warm_start=None)
        worth = _misreported(master, res)
        if worth is not None:
            res = SolveResult(termination=Termination.ERROR, objective=np.inf, bound=-np.inf,
                              iterations=res.iterations, columns=master.n_vars, solution=None,
                              message=f"HiGHS reported objective {res.objective} for a "
                                      f"solution worth {worth}")
        res.seconds = time.perf_counter() - t
        return res

    def _solve(self, master: MasterProblem, *, time_limit: float, rel_gap: float,
               warm_start: np.ndarray | None) -> SolveResult:
        t = time.perf_counter()
        h = new_model(self.threads)
        h.setOptionValue("mip_rel_gap", float(rel_gap))
        h.setOptionValue("time_limit", float(max(time_limit, 0.001)))
        if not self.presolve:
            h.setOptionValue("presolve", "off")
        h.passModel(to_highs_lp(master))
        if warm_start is not None:
            n = master.n_vars
            h.setSolution(n, np.arange(n, dtype=np.int32), np.asarray(warm_start, dtype=float))
        run(h)
        status = h.getModelStatus()
        info = h.getInfo()
        term = STATUS.get(status, Termination.ERROR)
        has = info.primal_solution_status == int(highspy.SolutionStatus.kSolutionStatusFeasible)
        x = np.asarray(h.getSolution().col_value) if has else None
        objective = float(info.objective_function_value) if has else np.inf
        bound = float(info.mip_dual_bound) if master.integrality.any() else objective
        if term is Termination.OPTIMAL and not master.integrality.any():
            bound = objective
        if not np.isfinite(bound):
            bound = -np.inf
        res = SolveResult(termination=term, objective=objective, bound=min(bound, objective),
                          iterations=int(max(info.mip_node_count, 0)), columns=master.n_vars,
                          seconds=time.perf_counter() - t, solution=x,
                          message=h.modelStatusToString(status))
        return finalize(res, rel_gap)


def _misreported(master: MasterProblem, res: SolveResult) -> float | None:
    """The returned solution's objective when HiGHS reported another (beyond its tolerances);
    None when they agree or there is no solution."""
    if not res.has_solution:
        return None
    worth = master.objective_of(np.asarray(res.solution))
    return None if abs(worth - res.objective) <= 1e-6 * max(1.0, abs(worth)) else worth
