"""Crash points for the crash-safety tests: `checkpoint(name)` kills this process with SIGKILL
when $CARBONPLAN_FAULTS names the point, with the given probability ("executor-called=0.3,
after-plan=0.2"). Unset (always, outside those tests), it does nothing. A SIGKILL at an exact
point of a cycle is a fault no real part can be made to produce on demand.
"""

from __future__ import annotations

import os
import random
import signal
from functools import cache

ENV = "CARBONPLAN_FAULTS"


@cache
def _points() -> dict[str, float]:
    spec = os.environ.get(ENV, "")
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, p = item.partition("=")
        out[name] = float(p or 1.0)
    return out


def checkpoint(name: str) -> None:
    p = _points().get(name)
    if p is not None and random.random() < p:
        os.kill(os.getpid(), signal.SIGKILL)
