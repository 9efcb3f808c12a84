"""Pyomo backend: appsi_highs by default, or any Pyomo solver by name (`gurobi`, `cplex`, `cbc`,
`scip`, ...).

Pitfall handled here: the legacy `SolverFactory('appsi_highs').solve(m)` overwrites its configured
time limit with the `timelimit=` keyword (default None), so the limit is always passed to `solve()`.
Terminations map by `TERMINATION`; a time-limited answer reads `time_limit`.

pyomo is imported here only. Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyomo.environ as pe
from pyomo.opt import SolverStatus, TerminationCondition

from carbonplan.planner.backends.base import Capabilities, finalize
from carbonplan.planner.master import MasterProblem
from carbonplan.planner.result import SolveResult, Termination

TC = TerminationCondition
TERMINATION: dict[object, Termination] = {
    TC.optimal: Termination.OPTIMAL,
    TC.globallyOptimal: Termination.OPTIMAL,
    TC.locallyOptimal: Termination.OPTIMAL,
    TC.maxTimeLimit: Termination.TIME_LIMIT,
    TC.maxIterations: Termination.TIME_LIMIT,
    TC.maxEvaluations: Termination.TIME_LIMIT,
    TC.userInterrupt: Termination.TIME_LIMIT,
    TC.infeasible: Termination.INFEASIBLE,
    TC.infeasibleOrUnbounded: Termination.INFEASIBLE,
    TC.unbounded: Termination.ERROR,
    TC.error: Termination.ERROR,
    TC.other: Termination.ERROR,
    TC.unknown: Termination.ERROR,
}
# relative MIP gap option of common solvers
GAP_OPTION = {"appsi_highs": "mip_rel_gap", "highs": "mip_rel_gap", "gurobi": "MIPGap",
              "gurobi_direct": "MIPGap", "cplex": "mip_tolerances_mipgap", "cbc": "ratioGap",
              "glpk": "mipgap", "scip": "limits/gap"}
WARM_START = {"appsi_highs", "gurobi", "gurobi_direct", "cplex", "cbc"}


def to_pyomo(master: MasterProblem) -> pe.ConcreteModel:
    """The master as a Pyomo model (binary variables where integral)."""
    m = pe.ConcreteModel()
    n = master.n_vars
    m.I = pe.RangeSet(0, n - 1)

    def bounds(_m: pe.ConcreteModel, i: int) -> tuple[float, float | None]:
        up = master.col_upper[i]
        return float(master.col_lower[i]), float(up) if np.isfinite(up) else None

    def domain(_m: pe.ConcreteModel, i: int) -> object:
        return pe.Integers if master.integrality[i] else pe.Reals

    m.x = pe.Var(m.I, bounds=bounds, within=domain)
    m.obj = pe.Objective(expr=sum(float(master.c[i]) * m.x[i] for i in range(n))
                         + float(master.offset), sense=pe.minimize)
    rows: list[list[tuple[int, float]]] = [[] for _ in range(master.n_rows)]
    for i in range(n):
        for k in range(master.a_start[i], master.a_start[i + 1]):
            rows[master.a_index[k]].append((i, float(master.a_value[k])))
    m.R = pe.RangeSet(0, max(master.n_rows - 1, 0)) if master.n_rows else pe.Set(initialize=[])

    def row_rule(_m: pe.ConcreteModel, r: int) -> object:
        terms = rows[r]
        if not terms:
            return pe.Constraint.Skip
        expr = sum(a * m.x[i] for i, a in terms)
        lo, up = master.row_lower[r], master.row_upper[r]
        return (float(lo) if np.isfinite(lo) else None, expr,
                float(up) if np.isfinite(up) else None)

    m.rows = pe.Constraint(m.R, rule=row_rule)
    return m


class PyomoBackend:
    """Any Pyomo solver; appsi_highs by default."""

    name = "pyomo"

    def __init__(self, solver: str = "appsi_highs", threads: int = 1) -> None:
        self.solver_name = solver
        self.threads = threads
        opt = pe.SolverFactory(solver)
        if not opt.available(exception_flag=False):
            raise ValueError(f"Pyomo solver {solver!r} is not available")
        self.capabilities = Capabilities(warm_start=solver in WARM_START, reports_bound=True)

    def solve(self, master: MasterProblem, *, time_limit: float, rel_gap: float,
              warm_start: np.ndarray | None = None) -> SolveResult:
        t = time.perf_counter()
        model = to_pyomo(master)
        opt = pe.SolverFactory(self.solver_name)
        options: dict[str, object] = {}
        gap_name = GAP_OPTION.get(self.solver_name)
        if gap_name:
            options[gap_name] = float(rel_gap)
        kwargs: dict[str, object] = {"timelimit": float(max(time_limit, 0.01)),
                                     "load_solutions": False}
        if self.solver_name == "appsi_highs":
            opt.config.mip_gap = float(rel_gap)
            options = {}
        if warm_start is not None and self.capabilities.warm_start:
            for i, v in enumerate(warm_start):
                model.x[i].set_value(float(round(v)))
            kwargs["warmstart"] = True
        if options:
            kwargs["options"] = options
        results = opt.solve(model, **kwargs)
        tc = results.solver.termination_condition
        term = TERMINATION.get(tc, Termination.ERROR)
        values = None
        objective = math.inf
        if len(results.solution) > 0 or results.solver.status in (SolverStatus.ok,
                                                                  SolverStatus.warning):
            try:
                model.solutions.load_from(results)
                values = np.array([pe.value(model.x[i], exception=False) or 0.0
                                   for i in range(master.n_vars)])
                objective = master.objective_of(values)
            except (ValueError, KeyError, AttributeError, RuntimeError):
                values = None
        lb = results.problem.lower_bound
        bound = float(lb) if lb is not None and np.isfinite(float(lb)) else -math.inf
        if values is None and term is Termination.OPTIMAL:
            term = Termination.ERROR
        res = SolveResult(termination=term, objective=objective,
                          bound=min(bound, objective), iterations=0, columns=master.n_vars,
                          seconds=time.perf_counter() - t, solution=values, message=str(tc))
        return finalize(res, rel_gap)
