"""One result type for every solve (LP, integer master, whole plan) and every backend.

Backends map their native statuses to `Termination` by explicit tables, so that a solve stopped by
its time limit reads `time_limit`, never `optimal`.

Must not import domain models, the store, signals or config, nor any solver package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Termination(StrEnum):
    """How a solve ended."""

    OPTIMAL = "optimal"          # proved optimal (gap 0 up to tolerance)
    GAP_REACHED = "gap_reached"  # stopped with gap <= the requested relative gap
    TIME_LIMIT = "time_limit"    # stopped by the time limit (an incumbent may exist)
    INFEASIBLE = "infeasible"    # proved infeasible
    ERROR = "error"              # anything else: no usable answer


@dataclass
class SolveResult:
    """Outcome of a solve.

    `bound` is a valid lower bound on the optimum of the problem that was solved; for a whole plan
    it is the Lagrangian (column generation) bound, valid for the full problem, not only for the
    generated columns. `gap = (objective - bound) / |objective|` (0 when both are 0).
    """

    termination: Termination
    objective: float = math.inf
    bound: float = -math.inf
    iterations: int = 0
    columns: int = 0
    seconds: float = 0.0
    solution: object | None = None  # backend: float array of variable values; plan: Schedule
    message: str = ""

    @property
    def gap(self) -> float:
        return relative_gap(self.objective, self.bound)

    @property
    def has_solution(self) -> bool:
        return self.solution is not None and math.isfinite(self.objective)


def relative_gap(objective: float, bound: float) -> float:
    """(objective - bound) / |objective|; inf when either is not finite, 0 when both are 0."""
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.inf
    if objective == 0.0:
        return 0.0 if bound >= -1e-12 else math.inf
    return (objective - bound) / abs(objective)
