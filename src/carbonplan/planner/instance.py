"""The planning instance: numpy arrays in fixed (job, pool, slot) order.

This is the boundary of the planner. Pricing, the master problem, the solver backends, the baseline
policies and the evaluator see only an `Instance`; they never import domain models, the store or
signals. The builder that fills an `Instance` from the queue, the site config and the carbon signals
lives in `build.py` beside this module.

Conventions:
- Slot `t` covers [t0 + t*slot_h, t0 + (t+1)*slot_h). A job placed in slots S occupies every slot
  in S; it may start at `release[j]` at the earliest and must have left its last slot by
  `deadline[j]` (slots s < deadline[j] may be used).
- A job needs `units[j, p]` capacity units in every slot it runs in pool p: GPUs for a whole-GPU
  pool, MIG compute slices for a MIG pool.
- `power_kw[j, p]` is the job's IT power in pool p (all its units); facility power multiplies by
  `pue[p]`. Site power caps bound facility power.
- Capacity is reserved in whole slots, but a run whose work is not a whole number of slots ends
  inside its last slot: it draws power, emits and is billed for `final_share[j, p]` of that slot
  only (the run's other slots, resume slots included, in full). A frozen run that started
  inside its first slot is likewise charged only from `start_offset[j]` of that slot on.
- Market codes: 0 on-demand, 1 spot, 2 owned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

ON_DEMAND, SPOT, OWNED = 0, 1, 2
MARKET_NAMES = ("on_demand", "spot", "owned")


@dataclass(frozen=True, eq=False)
class Instance:
    """Everything the planner needs, as arrays. Shapes: J jobs, P pools, T slots, S sites."""

    # -- time ---------------------------------------------------------------------------------
    t0: datetime                          # start of slot 0 (UTC, aware)
    slot_h: float                         # slot length in hours

    # -- pools (P) and their time series (P, T) ------------------------------------------------
    pool_names: tuple[str, ...]           # (P,)
    market: np.ndarray                    # int8 (P,): ON_DEMAND | SPOT | OWNED
    site: np.ndarray                      # int32 (P,): index into site_names
    pue: np.ndarray                       # float (P,)
    eviction_rate_per_h: np.ndarray       # float (P,): 0 unless spot
    embodied_kg_per_unit_h: np.ndarray    # float (P,): embodied kgCO2e per unit-hour
    capacity: np.ndarray                  # float (P, T): units available per slot
    price_usd_per_unit_h: np.ndarray      # float (P, T): rental price (0 for owned)
    energy_price_usd_per_kwh: np.ndarray  # float (P, T): facility energy price (owned pools)
    ci_g_per_kwh: np.ndarray              # float (P, T): carbon intensity of the pool's grid zone

    # -- sites (S) -------------------------------------------------------------------------------
    site_names: tuple[str, ...]           # (S,)
    power_cap_kw: np.ndarray              # float (S, T): facility power cap; inf = none

    # -- jobs (J) and job x pool (J, P) ---------------------------------------------------------
    job_ids: np.ndarray                   # int64 (J,): store ids (coordinates, not indices)
    eligible: np.ndarray                  # bool (J, P): may job j run in pool p at all
    units: np.ndarray                     # float (J, P): capacity units used per slot
    duration_slots: np.ndarray            # int32 (J, P): slots of work (>= 1 where eligible)
    power_kw: np.ndarray                  # float (J, P): IT power while running
    release: np.ndarray                   # int32 (J,): first slot the job may use
    deadline: np.ndarray                  # int32 (J,): slots < deadline may be used (any pool)
    pausable: np.ndarray                  # bool (J,): may run in several segments
    resume_slots: np.ndarray              # int32 (J,): extra slots paid by each resume
    checkpoint_interval_h: np.ndarray     # float (J,): 0 = never checkpoints
    checkpoint_cost_h: np.ndarray         # float (J,): time to write/restore a checkpoint
    home_pool: np.ndarray                 # int32 (J,): run-now pool (home, on-demand); -1 none
    unplanned_penalty_usd: np.ndarray     # float (J,): cost of leaving the job unplanned

    # -- objective and global constraints -------------------------------------------------------
    carbon_price_usd_per_t: float
    carbon_budget_t: float = float("inf")  # operational + embodied tCO2e over the horizon

    # -- re-planning (all -1 / 0 when planning from scratch) ------------------------------------
    fixed_pool: np.ndarray | None = None   # int32 (J,): pool of a frozen job, else -1
    fixed_start: np.ndarray | None = None  # int32 (J,): start slot of a frozen job, else -1
    prev_pool: np.ndarray | None = None    # int32 (J,): pool in the announced plan, else -1
    prev_start: np.ndarray | None = None   # int32 (J,): start in the announced plan, else -1
    move_penalty_usd: np.ndarray | None = None  # float (J,): stability cost of moving job j

    # per-pool deadline: the run on pool p ends before its last reserved slot does when its work is
    # not a whole number of slots, so it may use one slot more there; None: `deadline` everywhere
    deadline_pool: np.ndarray | None = None  # int32 (J, P): slots < deadline_pool[j, p] usable

    # share of its last slot a run on pool p works (and is charged for), in (0, 1]; None: 1
    final_share: np.ndarray | None = None  # float (J, P)
    # a frozen run that started inside its first slot works (and is charged for) only the rest
    # of it: its start within that slot, in slots, [0, 1); 0 for every other job; None: 0
    start_offset: np.ndarray | None = None  # float (J,)

    meta: dict = field(default_factory=dict)  # provenance (zones, sources); solvers ignore it

    def __post_init__(self) -> None:
        J, P, T, S = self.n_jobs, self.n_pools, self.n_slots, len(self.site_names)
        shapes = {
            "market": (P,), "site": (P,), "pue": (P,), "eviction_rate_per_h": (P,),
            "embodied_kg_per_unit_h": (P,), "capacity": (P, T), "price_usd_per_unit_h": (P, T),
            "energy_price_usd_per_kwh": (P, T), "ci_g_per_kwh": (P, T), "power_cap_kw": (S, T),
            "job_ids": (J,), "eligible": (J, P), "units": (J, P), "duration_slots": (J, P),
            "power_kw": (J, P), "release": (J,), "deadline": (J,), "pausable": (J,),
            "resume_slots": (J,), "checkpoint_interval_h": (J,), "checkpoint_cost_h": (J,),
            "home_pool": (J,), "unplanned_penalty_usd": (J,),
        }
        for name, shape in shapes.items():
            got = getattr(self, name).shape
            if got != shape:
                raise ValueError(f"Instance.{name}: shape {got}, expected {shape}")
        for name in ("fixed_pool", "fixed_start", "prev_pool", "prev_start"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(J, -1, dtype=np.int32))
        if self.move_penalty_usd is None:
            object.__setattr__(self, "move_penalty_usd", np.zeros(J))
        if self.deadline_pool is not None and self.deadline_pool.shape != (J, P):
            raise ValueError(f"Instance.deadline_pool: shape {self.deadline_pool.shape}, "
                             f"expected {(J, P)}")
        if self.final_share is None:
            object.__setattr__(self, "final_share", np.ones((J, P)))
        elif self.final_share.shape != (J, P):
            raise ValueError(f"Instance.final_share: shape {self.final_share.shape}, "
                             f"expected {(J, P)}")
        elif np.any(~(self.final_share > 0) | (self.final_share > 1)):
            raise ValueError("Instance.final_share must lie in (0, 1]")
        if self.start_offset is None:
            object.__setattr__(self, "start_offset", np.zeros(J))
        elif self.start_offset.shape != (J,):
            raise ValueError(f"Instance.start_offset: shape {self.start_offset.shape}, "
                             f"expected {(J,)}")
        elif np.any(~(self.start_offset >= 0) | (self.start_offset >= 1)):
            raise ValueError("Instance.start_offset must lie in [0, 1)")
        elif np.any((self.start_offset > 0) & (self.fixed_pool < 0)):
            raise ValueError("Instance.start_offset: only a frozen run may start mid-slot")
        for name in ("fixed_pool", "fixed_start", "prev_pool", "prev_start", "move_penalty_usd"):
            if getattr(self, name).shape != (J,):
                got = getattr(self, name).shape
                raise ValueError(f"Instance.{name}: shape {got}, expected {(J,)}")
        if self.slot_h <= 0:
            raise ValueError("Instance.slot_h must be > 0")
        if np.any(self.duration_slots[self.eligible] < 1):
            raise ValueError("Instance.duration_slots must be >= 1 wherever eligible")
        if np.any(self.site >= S) or np.any(self.site < 0):
            raise ValueError("Instance.site: index out of range")

    @property
    def deadline_by_pool(self) -> np.ndarray:
        """int (J, P): slots < deadline_by_pool[j, p] may be used on pool p (derived from
        `deadline` unless `deadline_pool` is set, so `dataclasses.replace` stays consistent)."""
        if self.deadline_pool is not None:
            return self.deadline_pool
        return np.broadcast_to(self.deadline[:, None], (self.n_jobs, self.n_pools))

    @property
    def n_jobs(self) -> int:
        return int(self.job_ids.shape[0])

    @property
    def n_pools(self) -> int:
        return len(self.pool_names)

    @property
    def n_slots(self) -> int:
        return int(self.capacity.shape[1])
