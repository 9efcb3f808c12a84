"""One HiGHS thread setting for the whole process.

HiGHS 1.16 keeps one thread pool per process and fails a run (model status "Not Set", before
solving) whose `threads` option differs from the pool's size, which the first model to run
fixes: one of ours, or one that Pyomo's appsi_highs made with the default. Every model carbonplan
builds comes from `new_model` (one thread each: the search runs sub-MIPs side by side in threads
of its own) and runs through `run`, which falls back to the pool as it is when another size got
there first. Earlier HiGHS versions accept any mix.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import highspy

THREADS = 1


def new_model(threads: int = THREADS) -> highspy.Highs:
    """A silent HiGHS model asking for `threads` threads (see the module docstring)."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(threads))
    return h


def run(h: highspy.Highs) -> highspy.HighsStatus:
    """`h.run()`, again on the process's thread pool as it is if HiGHS refused the model's
    thread count (it then returns an error before solving and leaves the status unset)."""
    status = h.run()
    unset = h.getModelStatus() == highspy.HighsModelStatus.kNotset
    if status == highspy.HighsStatus.kError and unset:
        h.setOptionValue("threads", 0)  # 0: whatever the pool has
        status = h.run()
    return status
