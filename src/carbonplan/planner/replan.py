"""Re-planning: freeze what has started, keep the announced plan unless moving pays, re-solve warm.

The daemon (or a test) holds the previous `PlanResult`, whose schedule is expressed in the slots of
the new instance (the instance builder maps it when the horizon moves). `with_previous` writes the
re-planning arrays of the instance from it:

- jobs whose previous start is before `freeze_until` (started, or inside the freeze window) are
  frozen: `fixed_pool` / `fixed_start` = their previous placement;
- every other previously planned job is announced: `prev_pool` / `prev_start`, and moving it (other
  pool or other start, or leaving it unplanned) costs `move_penalty_usd`.

`replan` then calls `plan` warm: the previous schedule is the first incumbent (placements that are
still valid and fit are kept) and the previous duals start the bound.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from carbonplan.planner.backends import Backend
from carbonplan.planner.columns import Schedule
from carbonplan.planner.duals import Duals
from carbonplan.planner.instance import Instance
from carbonplan.planner.solve import PlanOptions, PlanResult, Progress, plan


def with_previous(inst: Instance, previous: Schedule, *, freeze_until: int = 0,
                  move_penalty_usd: float | np.ndarray = 0.0,
                  frozen: np.ndarray | None = None) -> Instance:
    """A copy of `inst` with frozen and announced placements taken from `previous`.

    Args:
        inst: the new instance (new signals, new queue), in the same job order as `previous`.
        previous: the announced schedule, in the new instance's slots.
        freeze_until: jobs starting before this slot are frozen (started or about to start).
        move_penalty_usd: $ per moved announced job, scalar or (J,).
        frozen: bool (J,) jobs to freeze regardless of their start (e.g. reported running).

    Returns:
        The instance with fixed_pool/fixed_start, prev_pool/prev_start, move_penalty_usd set
        (entries already set in `inst` for frozen jobs are kept).
    """
    J = inst.n_jobs
    if previous.n_jobs != J:
        raise ValueError(f"previous schedule has {previous.n_jobs} jobs, instance {J}")
    planned = previous.pool >= 0
    start = previous.start
    freeze = planned & (start < freeze_until)
    if frozen is not None:
        freeze |= np.asarray(frozen, dtype=bool) & planned
    freeze |= inst.fixed_pool >= 0
    fixed_pool = np.where(inst.fixed_pool >= 0, inst.fixed_pool,
                          np.where(freeze, previous.pool, -1)).astype(np.int32)
    fixed_start = np.where(inst.fixed_pool >= 0, inst.fixed_start,
                           np.where(freeze, start, -1)).astype(np.int32)
    announced = planned & ~freeze
    prev_pool = np.where(announced, previous.pool, -1).astype(np.int32)
    prev_start = np.where(announced, start, -1).astype(np.int32)
    penalty = np.broadcast_to(np.asarray(move_penalty_usd, dtype=float), (J,)).copy()
    return dataclasses.replace(inst, fixed_pool=fixed_pool, fixed_start=fixed_start,
                               prev_pool=prev_pool, prev_start=prev_start,
                               move_penalty_usd=np.where(announced, penalty, 0.0))


def replan(inst: Instance, previous: Schedule | PlanResult, *, freeze_until: int = 0,
           move_penalty_usd: float | np.ndarray = 0.0, frozen: np.ndarray | None = None,
           duals: Duals | None = None, backend: str | Backend = "highs",
           time_limit: float = 30.0, rel_gap: float = 0.01, options: PlanOptions | None = None,
           progress: Callable[[Progress], None] | None = None) -> PlanResult:
    """Re-solve warm from a previous plan (see the module docstring).

    Args:
        inst: the new instance; its own fixed/prev arrays are kept where set.
        previous: the previous schedule or plan result (its duals are reused).
        freeze_until, move_penalty_usd, frozen: see `with_previous`.
        duals, backend, time_limit, rel_gap, options, progress: as for `plan`.
    """
    if isinstance(previous, PlanResult):
        duals = previous.duals if duals is None else duals
        previous = previous.schedule
    inst2 = with_previous(inst, previous, freeze_until=freeze_until,
                          move_penalty_usd=move_penalty_usd, frozen=frozen)
    if duals is not None and duals.beta.shape != (inst.n_pools, inst.n_slots):
        duals = None
    return plan(inst2, backend=backend, time_limit=time_limit, rel_gap=rel_gap,
                warm_start=previous, duals=duals, options=options, progress=progress)
