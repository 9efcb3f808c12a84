"""Parsing of user-typed times and durations, always to aware UTC datetimes and timedeltas.

Accepted durations: a sequence of number+unit, units s, m, h, d, w ("36h", "1d12h", "90m", "1.5h"),
or ISO 8601 durations ("PT30M", "P1DT2H"). Accepted times: ISO 8601 ("2026-11-25T18:00",
"2026-11-25 18:00+01:00", "2026-11-25T17:00Z"); a time without an offset is local time, as the user
reads their own clock. "now" and "now+36h" are accepted too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from carbonplan.errors import InputError

_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIMPLE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_ISO_DUR = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_duration(text: str, field: str, *, allow_zero: bool = False) -> timedelta:
    """Parse a duration such as '36h', '1d12h', '30m' or 'PT30M'.

    Raises:
        InputError: naming `field`, when the text is not a duration or is not positive.
    """
    s = str(text).strip()
    seconds: float | None = None
    m = _ISO_DUR.match(s) if s.upper().startswith("P") else None
    if m and any(m.groupdict().values()):
        g = {k: float(v or 0) for k, v in m.groupdict().items()}
        seconds = g["d"] * 86400 + g["h"] * 3600 + g["m"] * 60 + g["s"]
    elif s and _SIMPLE.sub("", s).strip() == "":
        seconds = sum(float(n) * _UNIT_S[u.lower()] for n, u in _SIMPLE.findall(s))
    if seconds is None:
        raise InputError(field, f"cannot parse '{text}' as a duration (examples: 30m, 36h, 1d12h)")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise InputError(field, f"must be a positive duration, got '{text}'")
    return timedelta(seconds=seconds)


def parse_time(text: str, field: str, *, now: datetime | None = None) -> datetime:
    """Parse an ISO 8601 time (or 'now', 'now+6h') to an aware UTC datetime.

    Raises:
        InputError: naming `field`, when the text is not a time.
    """
    s = str(text).strip()
    now = now or datetime.now(UTC)
    low = s.lower()
    if low == "now":
        return now
    if low.startswith("now+"):
        return now + parse_duration(s[4:], field)
    try:
        dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
    except ValueError:
        raise InputError(
            field, f"cannot parse '{text}' as an ISO 8601 time (example: 2026-11-25T18:00Z)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # the user's local clock
    return dt.astimezone(UTC)


def utc(dt: datetime) -> datetime:
    """An aware UTC datetime; naive input is taken to be UTC already (as stored)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def fmt_time(dt: datetime | None) -> str:
    """Compact UTC rendering for tables: 2026-11-25 18:00Z."""
    if dt is None:
        return "-"
    return utc(dt).strftime("%Y-%m-%d %H:%MZ")


def fmt_hours(hours: float) -> str:
    """1.5 -> '1h30m'; 36 -> '1d12h'."""
    minutes = round(hours * 60)
    d, rem = divmod(minutes, 1440)
    h, m = divmod(rem, 60)
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m else ""]
    return "".join(parts) or "0m"
