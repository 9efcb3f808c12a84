"""The backend protocol, capability flags and the registry of backends.

Must not import domain models, the store, signals or config, nor pulp / pyomo (their modules
are imported lazily by the registry's factories).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from carbonplan.planner.master import MasterProblem
from carbonplan.planner.registry import Registry
from carbonplan.planner.result import SolveResult


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do."""

    warm_start: bool      # uses a given feasible solution as its starting incumbent
    reports_bound: bool   # reports a valid dual bound of the problem it solved


@runtime_checkable
class Backend(Protocol):
    """Solves an integer master given as matrices."""

    name: str
    capabilities: Capabilities

    def solve(self, master: MasterProblem, *, time_limit: float, rel_gap: float,
              warm_start: np.ndarray | None = None) -> SolveResult:
        """Minimize the master; `result.solution` is the variable vector (float (n,)) if any.

        Args:
            master: the problem (objective includes `master.offset`).
            time_limit: seconds for the solver (model hand-off excluded).
            rel_gap: stop when (objective - bound) / |objective| <= rel_gap.
            warm_start: float (n,) a feasible 0/1 vector, or None.
        """
        ...


BACKENDS: Registry = Registry("backend")


@BACKENDS.register("highs")
def _highs(**options: object) -> Backend:
    from carbonplan.planner.backends.highs import HighsBackend

    return HighsBackend(**options)


@BACKENDS.register("pulp")
def _pulp(**options: object) -> Backend:
    from carbonplan.planner.backends.pulp import PulpBackend

    return PulpBackend(**options)


@BACKENDS.register("pyomo")
def _pyomo(**options: object) -> Backend:
    from carbonplan.planner.backends.pyomo import PyomoBackend

    return PyomoBackend(**options)


def get_backend(name: str = "highs", **options: object) -> Backend:
    """A backend by name. `"pulp:SOLVER"` / `"pyomo:SOLVER"` pick the underlying solver.

    Raises:
        UnknownNameError: for an unknown backend name (the message lists the valid ones).
    """
    if isinstance(name, str) and ":" in name:
        name, solver = name.split(":", 1)
        options = dict(options, solver=solver)
    return BACKENDS.get(name)(**options)


def finalize(result: SolveResult, rel_gap: float) -> SolveResult:
    """Refine an `optimal` answer into `gap_reached` when the reported gap is not zero."""
    from carbonplan.planner.result import Termination

    if result.termination is Termination.OPTIMAL and np.isfinite(result.bound):
        if result.gap > 1e-9 and rel_gap > 0:
            result.termination = Termination.GAP_REACHED
    return result
