"""PuLP backend: CBC (bundled) or any PuLP solver by name (`PULP_CBC_CMD`, `HiGHS`, `GUROBI_CMD`,
`CPLEX_CMD`, `SCIP_CMD`, ...).

PuLP reports `LpStatus == "Optimal"` for a solve stopped by the time limit with a feasible
solution, so the termination comes from `sol_status` (`SOL_STATUS`), never from `status` alone.
PuLP does not report a dual bound for CBC, so `bound` is -inf unless the answer is optimal.
Warm starts are used by CBC (`warmStart=True` with initial values); PuLP's HiGHS ignores them.

pulp is imported here only. Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pulp

from carbonplan.planner.backends.base import Capabilities
from carbonplan.planner.master import MasterProblem
from carbonplan.planner.result import SolveResult, Termination

# (status, sol_status) -> termination; sol_status decides whenever a solution exists
SOL_STATUS: dict[int, Termination] = {
    pulp.LpSolutionOptimal: Termination.OPTIMAL,
    pulp.LpSolutionIntegerFeasible: Termination.TIME_LIMIT,
    pulp.LpSolutionInfeasible: Termination.INFEASIBLE,
    pulp.LpSolutionUnbounded: Termination.ERROR,
}
STATUS_NO_SOLUTION: dict[int, Termination] = {
    pulp.LpStatusNotSolved: Termination.TIME_LIMIT,
    pulp.LpStatusInfeasible: Termination.INFEASIBLE,
    pulp.LpStatusUnbounded: Termination.ERROR,
    pulp.LpStatusUndefined: Termination.ERROR,
    pulp.LpStatusOptimal: Termination.ERROR,
}


def _variable(prob: pulp.LpProblem, name: str, low: float, up: float | None,
              cat: str) -> pulp.LpVariable:
    """A variable attached to `prob` (PuLP >= 3.3 API), or a free one on older PuLP."""
    if hasattr(prob, "add_variable"):
        return prob.add_variable(name, lowBound=low, upBound=up, cat=cat)
    return pulp.LpVariable(name, lowBound=low, upBound=up, cat=cat)


def to_pulp(master: MasterProblem) -> tuple[pulp.LpProblem, list[pulp.LpVariable]]:
    """The master as a PuLP problem (binary variables where integral)."""
    prob = pulp.LpProblem("carbonplan_master", pulp.LpMinimize)
    x = []
    for i in range(master.n_vars):
        up = master.col_upper[i] if np.isfinite(master.col_upper[i]) else None
        cat = pulp.LpInteger if master.integrality[i] else pulp.LpContinuous
        x.append(_variable(prob, f"x{i}", float(master.col_lower[i]),
                           None if up is None else float(up), cat))
    prob += pulp.LpAffineExpression(
        [(x[i], float(master.c[i])) for i in range(master.n_vars)]) + float(master.offset)
    rows: list[list[tuple[pulp.LpVariable, float]]] = [[] for _ in range(master.n_rows)]
    for i in range(master.n_vars):
        for k in range(master.a_start[i], master.a_start[i + 1]):
            rows[master.a_index[k]].append((x[i], float(master.a_value[k])))
    for r, terms in enumerate(rows):
        expr = pulp.LpAffineExpression(terms)
        lo, up = master.row_lower[r], master.row_upper[r]
        if np.isfinite(lo) and np.isfinite(up) and lo == up:
            prob += (expr == float(up)), f"r{r}"
        else:
            if np.isfinite(up):
                prob += (expr <= float(up)), f"r{r}u"
            if np.isfinite(lo):
                prob += (expr >= float(lo)), f"r{r}l"
    return prob, x


class PulpBackend:
    """Any PuLP solver; CBC by default."""

    name = "pulp"

    def __init__(self, solver: str = "PULP_CBC_CMD", threads: int = 1) -> None:
        available = pulp.listSolvers(onlyAvailable=True)
        if solver not in available:
            raise ValueError(f"PuLP solver {solver!r} is not available; available: "
                             f"{', '.join(available)}")
        self.solver = solver
        self.threads = threads
        self.capabilities = Capabilities(warm_start=solver == "PULP_CBC_CMD",
                                         reports_bound=False)

    def solve(self, master: MasterProblem, *, time_limit: float, rel_gap: float,
              warm_start: np.ndarray | None = None) -> SolveResult:
        t = time.perf_counter()
        prob, x = to_pulp(master)
        kwargs: dict[str, object] = {"msg": False, "timeLimit": float(max(time_limit, 1.0)),
                                     "gapRel": float(rel_gap)}
        if self.solver == "PULP_CBC_CMD":
            kwargs["threads"] = self.threads
            if warm_start is not None:
                for var, v in zip(x, warm_start, strict=True):
                    var.setInitialValue(float(round(v)))
                kwargs["warmStart"] = True
        with warnings.catch_warnings():
            # PuLP 3.3 announces PULP_CBC_CMD's removal in 4.0; it is the bundled CBC here
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.getSolver(self.solver, **kwargs)
            prob.solve(solver)
        sol_status = prob.sol_status
        if sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            term = SOL_STATUS[sol_status]
            values = np.array([v.varValue if v.varValue is not None else 0.0 for v in x])
            objective = master.objective_of(values)
        else:
            term = SOL_STATUS.get(sol_status, STATUS_NO_SOLUTION.get(prob.status,
                                                                      Termination.ERROR))
            values, objective = None, np.inf
        bound = -np.inf
        if term is Termination.OPTIMAL:
            # CBC stops at gapRel and still says optimal: the answer is optimal within rel_gap
            bound = objective if rel_gap <= 0 else objective * (1 - rel_gap) if objective >= 0 \
                else objective * (1 + rel_gap)
            if rel_gap > 0:
                term = Termination.GAP_REACHED
        return SolveResult(termination=term, objective=objective, bound=bound, iterations=0,
                           columns=master.n_vars, seconds=time.perf_counter() - t,
                           solution=values,
                           message=f"{pulp.LpStatus[prob.status]} / sol_status {sol_status}")
