"""Dual prices of the master's coupling rows, by row-block name.

`pool-capacity` is (P, T), `site-powercap` is (S, T), `org-carbonbudget` is a scalar; all are
<= 0 (they price `<=` rows of a minimization). `job-assign` (J,) is free. Any such vector, not only
an optimal LP dual, gives a valid Lagrangian lower bound (see `bound.py`).

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class Duals:
    """Dual prices of the coupling rows (and of the job rows when they come from an LP)."""

    beta: np.ndarray   # float (P, T): $ per unit per slot, <= 0
    pi: np.ndarray     # float (S, T): $ per facility kW per slot, <= 0
    lam: float = 0.0   # $ per tCO2e, <= 0
    mu: np.ndarray | None = None  # float (J,): job-assign duals of the LP that produced these

    @classmethod
    def zeros(cls, n_pools: int, n_sites: int, n_slots: int) -> Duals:
        return cls(beta=np.zeros((n_pools, n_slots)), pi=np.zeros((n_sites, n_slots)))

    def __getitem__(self, block: str) -> np.ndarray | float:
        """Dual values by row-block name."""
        table = {"pool-capacity": self.beta, "site-powercap": self.pi,
                 "org-carbonbudget": self.lam, "job-assign": self.mu}
        if block not in table:
            raise KeyError(f"unknown row block {block!r}; valid: {', '.join(table)}")
        return table[block]

    def projected(self) -> Duals:
        """A copy with every coupling dual clipped to <= 0 (so it prices a valid bound)."""
        return Duals(beta=np.minimum(self.beta, 0.0), pi=np.minimum(self.pi, 0.0),
                     lam=min(float(self.lam), 0.0), mu=None if self.mu is None else self.mu.copy())

    def copy(self) -> Duals:
        return Duals(beta=self.beta.copy(), pi=self.pi.copy(), lam=float(self.lam),
                     mu=None if self.mu is None else self.mu.copy())
