from datetime import UTC, datetime, timedelta

import pytest

from carbonplan.errors import InputError
from carbonplan.timeparse import fmt_hours, parse_duration, parse_time

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("text,expected", [
    ("36h", timedelta(hours=36)), ("1d12h", timedelta(hours=36)), ("30m", timedelta(minutes=30)),
    ("1.5h", timedelta(minutes=90)), ("PT30M", timedelta(minutes=30)),
    ("P1DT2H", timedelta(hours=26)), ("2w", timedelta(days=14)), ("90 s", timedelta(seconds=90)),
])
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text, "--within") == expected


@pytest.mark.parametrize("text", ["", "soon", "3 parsecs", "h", "12", "-5m", "P"])
def test_bad_durations_name_the_field(text: str) -> None:
    with pytest.raises(InputError) as e:
        parse_duration(text, "--within")
    assert e.value.field == "--within"


def test_zero_duration_only_when_allowed() -> None:
    with pytest.raises(InputError):
        parse_duration("0m", "--checkpoint-every")
    assert parse_duration("0m", "--checkpoint-cost", allow_zero=True) == timedelta(0)


def test_times_are_aware_utc() -> None:
    assert parse_time("2026-11-25T18:00Z", "--deadline") == datetime(2026, 11, 25, 18, tzinfo=UTC)
    t = parse_time("2026-11-25T18:00+01:00", "--deadline")
    assert t == datetime(2026, 11, 25, 17, tzinfo=UTC) and t.tzinfo == UTC
    assert parse_time("now+6h", "--deadline", now=NOW) == NOW + timedelta(hours=6)
    naive = parse_time("2026-11-25T18:00", "--deadline")
    assert naive.tzinfo == UTC  # local clock, converted


@pytest.mark.parametrize("text", ["tomorrow-ish", "2026-13-40", "25/11/2026"])
def test_bad_times(text: str) -> None:
    with pytest.raises(InputError) as e:
        parse_time(text, "--deadline")
    assert e.value.field == "--deadline" and "ISO 8601" in e.value.reason


def test_fmt_hours() -> None:
    assert fmt_hours(1.5) == "1h30m"
    assert fmt_hours(36) == "1d12h"
    assert fmt_hours(0.0) == "0m"
