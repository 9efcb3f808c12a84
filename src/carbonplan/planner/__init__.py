"""The planner: instance building, column generation, MIP backends, baselines, explanations.

Only `instance.py` (and the builder beside it) reads domain objects, the store and signals;
everything else sees arrays. The public entry points are loaded lazily, so importing
`carbonplan.planner.instance` does not load the solvers:

    from carbonplan.planner import plan, get_policy, POLICIES, get_backend
    from carbonplan.planner import explain_job, infeasible_alone
    from carbonplan.planner.replan import replan          # (the modules `replan` and `evaluate`
    from carbonplan.planner.evaluate import evaluate      #  would shadow same-named exports)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Instance": "instance",
    "plan": "solve", "PlanOptions": "solve", "PlanResult": "solve", "Progress": "solve",
    "with_previous": "replan", "Evaluation": "evaluate",
    "POLICIES": "policies", "get_policy": "policies",
    "BACKENDS": "backends", "get_backend": "backends",
    "explain_job": "explain", "infeasible_alone": "explain", "JobExplanation": "explain",
    "Infeasibility": "explain",
    "Schedule": "columns", "SolveResult": "result", "Termination": "result", "Duals": "duals",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'carbonplan.planner' has no attribute {name!r}")
    return getattr(import_module(f"carbonplan.planner.{module}"), name)
