"""Slurm formats: `#SBATCH` directives of a batch script, time limits and GRES strings.

Used by `carbonplan submit script.sbatch` (defaults from the script's directives) and by the Slurm
executor (time_limit and tres_per_node from `squeue --json`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from carbonplan.errors import InputError


def parse_time_limit_min(text: str, field: str = "--time") -> float:
    """Slurm time limit to minutes: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    s = text.strip()
    try:
        days = 0
        if "-" in s:
            d, s = s.split("-", 1)
            days = int(d)
            parts = [int(x) for x in s.split(":")]
            h, m, sec = (parts + [0, 0])[:3]
        else:
            parts = [int(x) for x in s.split(":")]
            if len(parts) == 1:
                h, m, sec = 0, parts[0], 0
            elif len(parts) == 2:
                h, m, sec = 0, parts[0], parts[1]
            elif len(parts) == 3:
                h, m, sec = parts
            else:
                raise ValueError
    except ValueError:
        raise InputError(field, f"cannot parse Slurm time limit '{text}'") from None
    minutes = days * 1440 + h * 60 + m + sec / 60
    if minutes <= 0:
        raise InputError(field, f"must be positive, got '{text}'")
    return minutes


_GRES = re.compile(r"^(?:gres[:/])?gpu(?::(?P<type>[A-Za-z0-9_.\-]+))?(?::(?P<n>\d+))?$")


def parse_gpu_gres(text: str) -> tuple[str | None, int] | None:
    """'gpu:a100:2' / 'gres:gpu:a100:1' / 'gpu:2' / 'gres/gpu:h100=1' -> (type or None, count)."""
    for item in text.split(","):
        item = item.strip().replace("=", ":")
        m = _GRES.match(item)
        if m:
            typ, n = m.group("type"), m.group("n")
            if typ is not None and typ.isdigit() and n is None:
                typ, n = None, typ
            return typ, int(n) if n else 1
    return None


@dataclass
class SbatchDirectives:
    name: str | None = None
    gpu_type: str | None = None
    gpus: int | None = None
    time_min: float | None = None
    deadline: str | None = None
    begin: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def parse_sbatch(text: str, source: str = "script") -> SbatchDirectives:
    """The #SBATCH directives carbonplan understands; others are kept in `extra`."""
    out = SbatchDirectives()
    for line in text.splitlines():
        if not line.startswith("#SBATCH"):
            if line.strip() and not line.startswith("#"):
                break  # directives end at the first command
            continue
        for tok in shlex.split(line[len("#SBATCH"):], comments=True):
            key, _, val = tok.partition("=")
            if key in ("-J", "--job-name"):
                out.name = val
            elif key in ("-t", "--time"):
                out.time_min = parse_time_limit_min(val, f"{source}: --time")
            elif key == "--gres" or key in ("-G", "--gpus"):
                g = parse_gpu_gres(val if key == "--gres" else f"gpu:{val}")
                if g:
                    out.gpu_type, out.gpus = g
            elif key == "--deadline":
                out.deadline = val
            elif key in ("-b", "--begin"):
                out.begin = val
            elif key.startswith("-"):
                out.extra[key] = val
    return out
