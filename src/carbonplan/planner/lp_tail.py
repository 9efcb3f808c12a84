"""Column generation's next LP on the second core, for the bound, while the primal steps run.

Column generation stops at its tolerance or its time share with the columns of its last pricing
already in the master, unsolved. Solving that master once more and pricing at its duals lifts
the Lagrangian bound by 0.03-0.05% on 1,000 x 12 x 72 (a twentieth of the 1% target) in 0.5-0.9
s, while the steps after column generation (the greedy at the duals, the unit repack's LP) keep
one core busy and leave the other idle (docs/benchmarks.md, "The next LP beside the primal
steps").

The live LP is no longer used by column generation once it returns, and pricing leaves the
pricer as it was, so the plan's pricer serves both threads. Fails open: no bound is a bound not
lifted.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import threading
import time

from carbonplan.planner.master import LiveLP
from carbonplan.planner.pricing import Pricer
from carbonplan.planner.result import Termination


class LPTail:
    """One more LP of column generation in a thread, ending by `until` (perf_counter seconds);
    `bound()` reads the Lagrangian bound at its duals once it is there."""

    def __init__(self, pricer: Pricer, live: LiveLP, method: str, *, until: float) -> None:
        self.pricer, self.live, self.method, self.until = pricer, live, method, until
        self._bound: float | None = None
        try:  # so that stop() can end the LP (an interrupt callback, once per IPM iteration)
            live.h.HandleUserInterrupt = True
        except Exception:  # (a highspy without it: the LP ends by `until`)
            pass
        self._thread = threading.Thread(target=self._run, name="carbonplan-lp-tail", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            left = self.until - time.perf_counter()
            if left <= 0:
                return
            sol = self.live.solve(method=self.method, time_limit=left)
            if sol.result.termination is not Termination.OPTIMAL:
                return  # (stopped by its time limit, or IPX short of its tolerance)
            if time.perf_counter() < self.until:
                self._bound = self.pricer.price(sol.duals, keep_paths=False).lagrangian
        except Exception:  # fail open: the plan keeps the bound it has
            self._bound = None

    def bound(self, wait: float = 0.0) -> float | None:
        """The bound at the LP's duals, or None while it runs (after waiting up to `wait` s)
        or when it failed."""
        if wait > 0:
            self._thread.join(wait)
        return None if self._thread.is_alive() else self._bound

    def stop(self) -> None:
        """End the LP now (the plan is done): the core goes back to the caller of the plan
        instead of an LP whose bound nobody reads."""
        try:
            self.live.h.cancelSolve()
        except Exception:  # fail open: it ends by `until`
            pass
