"""Columns (ways to run one job) and schedules (one column or nothing per job), as arrays.

A column is (job, pool, slots). Slots are kept as CSR lists (`indptr`, `slots`), so contiguous
runs and several-segment runs of pausable jobs share one representation. A column's cost is the
sum of its slots' costs (see `costs.py`; its last slot counts `final_share[job, pool]` of one)
times `1 + rework_factor[job, pool]`, plus the move penalty when the instance announces a previous
placement that the column changes.

A `Schedule` is the same thing with exactly one entry per job (`pool == -1`: unplanned).

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbonplan.planner.costs import CostCoefficients, slot_kg_op, slot_usd
from carbonplan.planner.instance import Instance


def _segment_sum(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Sum of `values` over CSR segments (empty segments sum to 0), shape (len(indptr) - 1,)."""
    out = np.zeros(len(indptr) - 1)
    if values.size:
        owner = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        out += np.bincount(owner, weights=values, minlength=len(indptr) - 1)
    return out


def first_slots(indptr: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """First slot of each CSR segment, -1 for empty segments, int (len(indptr) - 1,)."""
    counts = np.diff(indptr)
    if slots.size == 0:
        return np.full(len(counts), -1, dtype=np.int64)
    return np.where(counts > 0, slots[np.minimum(indptr[:-1], slots.size - 1)], -1)


def contiguous_slots(start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR of runs [start, start + length), shapes (N,) -> indptr (N+1,), slots (sum length,)."""
    length = np.maximum(np.asarray(length, dtype=np.int64), 0)
    indptr = np.zeros(len(length) + 1, dtype=np.int64)
    np.cumsum(length, out=indptr[1:])
    owner = np.repeat(np.arange(len(length)), length)
    slots = (np.asarray(start, dtype=np.int64)[owner] + np.arange(indptr[-1]) - indptr[owner])
    return indptr, slots.astype(np.int32)


@dataclass(frozen=True, eq=False)
class ColumnCosts:
    """Cost parts of N columns (all include the expected spot rework)."""

    usd: np.ndarray       # float (N,): rental + energy $
    kg_op: np.ndarray     # float (N,): operational kgCO2e (with PUE)
    kg_emb: np.ndarray    # float (N,): embodied kgCO2e
    kwh: np.ndarray       # float (N,): facility kWh
    move_usd: np.ndarray  # float (N,): stability penalty for changing an announced placement
    objective: np.ndarray  # float (N,): usd + carbon price x t + move penalty

    @property
    def t_co2e(self) -> np.ndarray:
        """Operational + embodied tCO2e, (N,)."""
        return (self.kg_op + self.kg_emb) / 1000.0


def slot_weights(inst: Instance, cc: CostCoefficients, job: np.ndarray, pool: np.ndarray,
                 indptr: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """float (nnz,): how much of each occupied slot a run is charged: its last `final_share`,
    and a frozen run that started inside its first slot that one from `start_offset` on (only
    the frozen placement: another start of the job is charged whole).

    Slots are in increasing order within each column, as everywhere in the planner.
    """
    w = np.ones(int(indptr[-1] - indptr[0]))
    first, ends = indptr[:-1] - indptr[0], indptr[1:] > indptr[:-1]
    w[indptr[1:][ends] - 1 - indptr[0]] = cc.final_share[job[ends], pool[ends]]
    off = inst.start_offset[job]
    frozen = ends & (off > 0)
    frozen[frozen] &= ((pool[frozen] == inst.fixed_pool[job[frozen]])
                       & (slots[first[frozen]] == inst.fixed_start[job[frozen]]))
    w[first[frozen]] = np.maximum(w[first[frozen]] - off[frozen], 0.0)
    return w


def price_columns(inst: Instance, cc: CostCoefficients, job: np.ndarray, pool: np.ndarray,
                  indptr: np.ndarray, slots: np.ndarray, *, whole_runs: bool = True
                  ) -> ColumnCosts:
    """Exact cost parts of columns given by (job, pool) (N,) and CSR slots.

    Args:
        inst: the instance (for prev placements and move penalties).
        cc: its cost coefficients.
        job: int (N,) job index per column.
        pool: int (N,) pool index per column (all >= 0).
        indptr: int (N+1,) CSR offsets into `slots`.
        slots: int (nnz,) occupied slot indices.
        whole_runs: the columns are whole runs (their last slot is charged `final_share`);
            False prices every slot in full (slot-by-slot costs, not runs).

    Returns:
        The cost parts, each (N,).
    """
    counts = np.diff(indptr)
    jj = np.repeat(job, counts)
    pp = np.repeat(pool, counts)
    factor = 1.0 + cc.rework_factor[job, pool]
    w = slot_weights(inst, cc, job, pool, indptr, slots) if whole_runs else np.ones(len(slots))
    usd = _segment_sum(slot_usd(cc, jj, pp, slots) * w, indptr) * factor
    kg_op = _segment_sum(slot_kg_op(cc, jj, pp, slots) * w, indptr) * factor
    charged = _segment_sum(w, indptr)
    kg_emb = cc.emb_kg_slot[job, pool] * charged * factor
    kwh = cc.slot_kwh[job, pool] * charged * factor
    start = first_slots(indptr, slots)
    move = move_penalty(inst, job, pool, start)
    objective = usd + cc.carbon_usd_per_kg * (kg_op + kg_emb) + move
    return ColumnCosts(usd=usd, kg_op=kg_op, kg_emb=kg_emb, kwh=kwh, move_usd=move,
                       objective=objective)


def move_penalty(inst: Instance, job: np.ndarray, pool: np.ndarray,
                 start: np.ndarray) -> np.ndarray:
    """Stability penalty $ of placing jobs at (pool, start) (N,); pool -1 means unplanned.

    A job with an announced placement (prev_pool >= 0) pays `move_penalty_usd` when its pool or its
    start slot changes (being left unplanned is a change).
    """
    prev_pool = inst.prev_pool[job]
    moved = (prev_pool >= 0) & ((pool != prev_pool) | (start != inst.prev_start[job]))
    return np.where(moved, inst.move_penalty_usd[job], 0.0)


@dataclass(eq=False)
class ColumnSet:
    """A growing set of columns: arrays plus CSR slot lists, with exact de-duplication."""

    job: np.ndarray       # int32 (C,)
    pool: np.ndarray      # int32 (C,)
    indptr: np.ndarray    # int64 (C+1,)
    slots: np.ndarray     # int32 (nnz,)
    objective: np.ndarray  # float (C,): column cost in the master's objective
    t_co2e: np.ndarray    # float (C,): tCO2e (for the carbon-budget row)

    @classmethod
    def empty(cls) -> ColumnSet:
        """No columns."""
        return cls(job=np.zeros(0, np.int32), pool=np.zeros(0, np.int32),
                   indptr=np.zeros(1, np.int64), slots=np.zeros(0, np.int32),
                   objective=np.zeros(0), t_co2e=np.zeros(0))

    def __post_init__(self) -> None:
        self._keys: dict[bytes, int] = {}
        for c in range(len(self.job)):
            self._keys.setdefault(self._key(c), c)

    def __len__(self) -> int:
        return int(self.job.shape[0])

    def _key(self, c: int) -> bytes:
        a, b = self.indptr[c], self.indptr[c + 1]
        head = np.array([self.job[c], self.pool[c]], dtype=np.int32).tobytes()
        return head + self.slots[a:b].tobytes()

    def start(self) -> np.ndarray:
        """First slot of every column, int (C,)."""
        return self.slots[self.indptr[:-1]]

    def end(self) -> np.ndarray:
        """One past the last slot of every column, int (C,)."""
        return self.slots[self.indptr[1:] - 1] + 1

    def column_slots(self, c: int) -> np.ndarray:
        """Slots of column c."""
        return self.slots[self.indptr[c]:self.indptr[c + 1]]

    def add(self, inst: Instance, cc: CostCoefficients, job: np.ndarray, pool: np.ndarray,
            indptr: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Add columns (priced exactly), skipping duplicates.

        Returns:
            int (N,) index in this set of each given column (existing index for duplicates).
        """
        job = np.asarray(job, dtype=np.int32)
        pool = np.asarray(pool, dtype=np.int32)
        n = len(job)
        index = np.empty(n, dtype=np.int64)
        new = []
        slots = np.asarray(slots, dtype=np.int32)
        for k in range(n):
            key = (np.array([job[k], pool[k]], dtype=np.int32).tobytes()
                   + slots[indptr[k]:indptr[k + 1]].tobytes())
            found = self._keys.get(key)
            if found is None:
                found = len(self) + len(new)
                self._keys[key] = found
                new.append(k)
            index[k] = found
        if not new:
            return index
        sel = np.asarray(new, dtype=np.int64)
        counts = np.diff(indptr)[sel]
        sub_indptr = np.zeros(len(sel) + 1, dtype=np.int64)
        np.cumsum(counts, out=sub_indptr[1:])
        take = np.repeat(indptr[:-1][sel], counts) + (np.arange(sub_indptr[-1])
                                                      - np.repeat(sub_indptr[:-1], counts))
        sub_slots = slots[take]
        costs = price_columns(inst, cc, job[sel], pool[sel], sub_indptr, sub_slots)
        self.job = np.concatenate([self.job, job[sel]])
        self.pool = np.concatenate([self.pool, pool[sel]])
        self.indptr = np.concatenate([self.indptr, self.indptr[-1] + sub_indptr[1:]])
        self.slots = np.concatenate([self.slots, sub_slots])
        self.objective = np.concatenate([self.objective, costs.objective])
        self.t_co2e = np.concatenate([self.t_co2e, costs.t_co2e])
        return index

    def subset(self, keep: np.ndarray) -> ColumnSet:
        """A new set with the columns at indices `keep` (int or bool mask), in that order."""
        keep = np.flatnonzero(keep) if keep.dtype == bool else np.asarray(keep, dtype=np.int64)
        counts = np.diff(self.indptr)[keep]
        indptr = np.zeros(len(keep) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        take = np.repeat(self.indptr[:-1][keep], counts) + (np.arange(indptr[-1])
                                                           - np.repeat(indptr[:-1], counts))
        return ColumnSet(job=self.job[keep], pool=self.pool[keep], indptr=indptr,
                         slots=self.slots[take], objective=self.objective[keep],
                         t_co2e=self.t_co2e[keep])


@dataclass(frozen=True, eq=False)
class Schedule:
    """One placement per job: a pool and its occupied slots (CSR), or unplanned (pool -1)."""

    pool: np.ndarray    # int32 (J,): -1 = unplanned
    indptr: np.ndarray  # int64 (J+1,)
    slots: np.ndarray   # int32 (nnz,): occupied slots, ascending per job

    @property
    def n_jobs(self) -> int:
        return int(self.pool.shape[0])

    @property
    def start(self) -> np.ndarray:
        """First occupied slot per job, -1 if unplanned, int (J,)."""
        return first_slots(self.indptr, self.slots)

    @property
    def end(self) -> np.ndarray:
        """One past the last occupied slot per job, -1 if unplanned, int (J,)."""
        counts = np.diff(self.indptr)
        idx = np.maximum(self.indptr[1:] - 1, 0)
        return np.where(counts > 0, (self.slots[idx] + 1) if len(self.slots) else -1, -1)

    def job_slots(self, j: int) -> np.ndarray:
        """Occupied slots of job j."""
        return self.slots[self.indptr[j]:self.indptr[j + 1]]

    @classmethod
    def unplanned(cls, n_jobs: int) -> Schedule:
        """Every job unplanned."""
        return cls(pool=np.full(n_jobs, -1, np.int32), indptr=np.zeros(n_jobs + 1, np.int64),
                   slots=np.zeros(0, np.int32))

    @classmethod
    def from_starts(cls, inst: Instance, pool: np.ndarray, start: np.ndarray) -> Schedule:
        """Contiguous runs: job j in `pool[j]` from `start[j]` for `duration_slots[j, pool]`.

        Args:
            inst: the instance (for durations).
            pool: int (J,), -1 = unplanned.
            start: int (J,), ignored where pool is -1.
        """
        pool = np.asarray(pool, dtype=np.int32)
        planned = pool >= 0
        length = np.where(planned, inst.duration_slots[np.arange(len(pool)),
                                                       np.maximum(pool, 0)], 0)
        indptr, slots = contiguous_slots(np.where(planned, start, 0), length)
        return cls(pool=np.where(planned, pool, -1).astype(np.int32), indptr=indptr, slots=slots)

    @classmethod
    def from_columns(cls, n_jobs: int, cols: ColumnSet, chosen: np.ndarray) -> Schedule:
        """Schedule from chosen column indices per job (int (J,), -1 = unplanned)."""
        chosen = np.asarray(chosen, dtype=np.int64)
        planned = chosen >= 0
        safe = np.where(planned, chosen, 0)
        counts = np.where(planned, np.diff(cols.indptr)[safe] if len(cols) else 0, 0)
        indptr = np.zeros(n_jobs + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        take = (np.repeat(cols.indptr[:-1][safe] if len(cols) else np.zeros(n_jobs, np.int64),
                          counts) + np.arange(indptr[-1]) - np.repeat(indptr[:-1], counts))
        slots = cols.slots[take] if len(cols) else np.zeros(0, np.int32)
        pool = np.where(planned, cols.pool[safe] if len(cols) else -1, -1).astype(np.int32)
        return cls(pool=pool, indptr=indptr, slots=slots.astype(np.int32))

    def replace(self, jobs: np.ndarray, other: Schedule) -> Schedule:
        """A copy where `jobs` take their placement from `other` (same number of jobs)."""
        use_other = np.zeros(self.n_jobs, dtype=bool)
        use_other[jobs] = True
        counts_self = np.diff(self.indptr)
        counts_other = np.diff(other.indptr)
        counts = np.where(use_other, counts_other, counts_self)
        indptr = np.zeros(self.n_jobs + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        src_slots = np.concatenate([self.slots, other.slots])
        src_start = np.where(use_other, other.indptr[:-1] + len(self.slots), self.indptr[:-1])
        take = np.repeat(src_start, counts) + np.arange(indptr[-1]) - np.repeat(indptr[:-1],
                                                                                counts)
        slots = src_slots[take]
        pool = np.where(use_other, other.pool, self.pool).astype(np.int32)
        return Schedule(pool=pool, indptr=indptr, slots=slots.astype(np.int32))

    def as_columns(self, inst: Instance, cc: CostCoefficients) -> tuple[ColumnSet, np.ndarray]:
        """The planned jobs as a new ColumnSet, and each job's column index (-1 unplanned)."""
        planned = np.flatnonzero(self.pool >= 0)
        cols = ColumnSet.empty()
        counts = np.diff(self.indptr)[planned]
        indptr = np.zeros(len(planned) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        take = np.repeat(self.indptr[:-1][planned], counts) + (np.arange(indptr[-1])
                                                               - np.repeat(indptr[:-1], counts))
        index = np.full(self.n_jobs, -1, dtype=np.int64)
        index[planned] = cols.add(inst, cc, planned, self.pool[planned], indptr, self.slots[take])
        return cols, index
