"""Carbon signals: providers, validation, caching, fallback and blending of carbon intensity.

Entry points (imported lazily, so `import carbonplan.signals` stays cheap for the config):
- `SignalService` / `open_signals(cfg, store)`: `forecast`, `history`, `build_ci_matrix`;
- `build_ci_matrix(cfg, store, zones, t0, n_slots, slot_h)`: one-shot matrix for the planner;
- `detect_change(used, new, planned)`: does a new forecast matter for the current plan;
- `Series`, `Flag`, `CIMatrix`: the types they return.
Providers are registered by name in `registry.PROVIDERS`.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

# a library logs; the application (daemon, tests) decides where it goes
logging.getLogger(__name__).addHandler(logging.NullHandler())

_EXPORTS = {
    "SignalService": "service", "open_signals": "service", "build_ci_matrix": "service",
    "detect_change": "change", "ChangeReport": "change", "ZoneChange": "change",
    "Series": "series", "Flag": "series", "CIMatrix": "matrix", "ZoneProvenance": "matrix",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"carbonplan.signals.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'carbonplan.signals' has no attribute {name!r}")
