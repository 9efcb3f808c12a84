"""Integer-master backends behind one protocol, chosen by name.

    backend = get_backend("highs")             # default: highspy
    backend = get_backend("pulp")              # PuLP with CBC; "pulp:GUROBI_CMD" any PuLP solver
    backend = get_backend("pyomo")             # Pyomo with appsi_highs; "pyomo:gurobi" any solver
    result = backend.solve(master, time_limit=10, rel_gap=0.01, warm_start=x0)

Backends take a `MasterProblem` (matrices), never domain objects. pulp and pyomo are imported only
inside their own modules, when such a backend is first requested.
"""

from carbonplan.planner.backends.base import (
    BACKENDS,
    Backend,
    Capabilities,
    get_backend,
)

__all__ = ["BACKENDS", "Backend", "Capabilities", "get_backend"]
