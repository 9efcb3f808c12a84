"""Validation: every rule, bad points dropped and counted, mostly-bad responses rejected."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from carbonplan.signals.errors import ProviderResponseError
from carbonplan.signals.series import GAP, Flag
from carbonplan.signals.validate import RawPoint, build_series, parse_time, within

T = datetime(2026, 11, 23, tzinfo=UTC)


def pts(*pairs, flag=Flag.FORECAST):
    return [RawPoint(t if not isinstance(t, int) else T + timedelta(hours=t), v, flag)
            for t, v in pairs]


def build(points, **kw):
    args = dict(zone="DE", provider="test", source="test", signal="average", kind="forecast",
                step_s=3600, issued_at=T, fetched_at=T)
    return build_series(points, **{**args, **kw})


def test_clean_points_become_a_regular_series() -> None:
    s = build(pts((0, 100), (1, 110.5), (2, 0)))
    assert s.start == T and s.step_s == 3600 and s.n == 3 and s.dropped == 0
    assert s.values.tolist() == [100, 110.5, 0] and s.flags.tolist() == [Flag.FORECAST] * 3


def test_out_of_order_points_are_sorted_and_missing_hours_are_gaps() -> None:
    s = build(pts((3, 30), (0, 0.5), (1, 10)))
    assert s.values[:2].tolist() == [0.5, 10] and np.isnan(s.values[2]) and s.values[3] == 30
    assert s.flags[2] == GAP and s.dropped == 0 and s.covered_until == T + timedelta(hours=4)


@pytest.mark.parametrize("bad,why", [
    (None, "null"), ("abc", "not a number"), (float("nan"), "not finite"),
    (float("inf"), "not finite"), (-1, "negative"), (2000, ">= 2000"), (True, "not a number"),
])
def test_each_bad_value_is_dropped_and_counted(bad, why, caplog) -> None:
    s = build(pts((0, 100), (1, bad), (2, 120), (3, 130)))
    assert s.dropped == 1 and np.isnan(s.values[1]) and s.values[3] == 130
    assert why in caplog.text


def test_duplicates_keep_the_last_and_count() -> None:
    s = build(pts((0, 100), (1, 110), (1, 111), (2, 120)))
    assert s.values.tolist() == [100, 111, 120] and s.dropped == 1


def test_bad_times_and_off_grid_points_are_dropped() -> None:
    s = build(pts((0, 1), (1, 2), (2, 3), (3, 4), ("yesterday", 5), (T + timedelta(minutes=90), 6)))
    assert s.n == 4 and s.dropped == 2


def test_a_mostly_bad_response_is_rejected_whole() -> None:
    with pytest.raises(ProviderResponseError, match="3 of 5 points invalid"):
        build(pts((0, 1), (1, None), (2, -5), (3, "x"), (4, 5)))
    with pytest.raises(ProviderResponseError, match="no data points"):
        build([])
    with pytest.raises(ProviderResponseError, match="1 of 1"):
        build(pts((0, None)))
    # the threshold is a setting
    s = build(pts((0, 1), (1, None), (2, -5), (3, "x"), (4, 5)), max_bad_fraction=0.7)
    assert s.dropped == 3


def test_window_keeps_points_inside_without_counting_the_rest() -> None:
    s = build(pts(*[(h, h) for h in range(10)]), window=(T + timedelta(hours=2),
                                                          T + timedelta(hours=5)))
    assert s.start == T + timedelta(hours=2) and s.values.tolist() == [2, 3, 4]
    assert s.dropped == 0


def test_history_is_issued_at_the_end_of_its_last_point() -> None:
    s = build(pts((0, 1), (1, 2)), kind="history", issued_at=None)
    assert s.issued_at == T + timedelta(hours=2)


def test_times_parse_in_every_provider_format() -> None:
    want = datetime(2026, 11, 23, 12, tzinfo=UTC)
    for text in ("2026-11-23T12:00:00.000Z", "2026-11-23T12:00Z", "2026-11-23T12:00:00+00:00",
                 "2026-11-23 13:00:00+01:00", "2026-11-23 12:00:00"):
        assert parse_time(text) == want, text
    assert parse_time("") is None and parse_time(None) is None and parse_time(12) is None


def test_within_keeps_bad_times_for_counting() -> None:
    p = pts((0, 1), (5, 2), ("junk", 3))
    assert len(within(p, T, T + timedelta(hours=1))) == 2
