"""The one error type for bad input, raised at the edges (CLI, config loader, signals).

The CLI catches `InputError` once and prints `error: <field>: <reason>` on one line, exit code 2.
Inner code asserts invariants instead of raising this.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """Bad input: names the field (CLI flag, config key path or API field) and says why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown(kind: str, word: str, choices: Iterable[str], limit: int = 12) -> str:
    """Reason text for an unknown name, with a suggestion and (some of) the valid names."""
    names = sorted(choices)
    shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return f"unknown {kind} '{word}'{did_you_mean(word, names)}; known: {shown}"
