"""A registry of implementations by name, loaded lazily.

Names map to "module:attribute" strings, so listing the names (config validation, `--help`) imports
no provider module and none of their dependencies (requests, numpy). An unknown name is an
`InputError` that lists the valid ones. Must not import anything heavy.
"""

from __future__ import annotations

import importlib
from typing import Any

from carbonplan.errors import InputError, unknown


class Registry:
    """Named implementations of one kind (carbon providers, ...)."""

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str, field: str) -> Any:
        """The implementation registered as `name`.

        Raises:
            InputError: naming `field`, when `name` is not registered.
        """
        target = self._entries.get(name)
        if target is None:
            raise InputError(field, unknown(self.kind, name, self._entries))
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


PROVIDERS = Registry("provider", {
    "offline": "carbonplan.signals.providers.offline:OfflineModel",
    "electricitymaps": "carbonplan.signals.providers.electricitymaps:ElectricityMaps",
    "watttime": "carbonplan.signals.providers.watttime:WattTime",
    "ukgrid": "carbonplan.signals.providers.ukgrid:UkGrid",
    "csv": "carbonplan.signals.providers.csvfile:CsvFile",
})
