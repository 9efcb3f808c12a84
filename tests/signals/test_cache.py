"""The forecast cache in the store, on SQLite and PostgreSQL: round trips and overlap queries."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from carbonplan.signals.cache import SeriesCache, from_row, to_row
from carbonplan.signals.series import GAP, Flag, Series
from carbonplan.store import open_store

T = datetime(2026, 11, 23, tzinfo=UTC)


def series(start, values, kind="history", issued=None, fetched=None) -> Series:
    v = np.array(values, dtype=float)
    f = np.where(np.isfinite(v), Flag.MEASUREMENT, GAP).astype(np.int8)
    end = start + timedelta(hours=len(values))
    return Series(zone="DE", provider="electricitymaps", source="EM", signal="average",
                  kind=kind, start=start, step_s=3600, values=v, flags=f,
                  issued_at=issued or end, fetched_at=fetched or end)


@pytest.fixture
def store(store_url: str):
    s = open_store(store_url)
    yield s
    s.close()


def test_round_trip_keeps_values_gaps_flags_and_times(store) -> None:
    s = series(T, [1.5, np.nan, 3.0])
    store.save_series(to_row(s, "electricitymaps:lifecycle"))
    row = store.latest_series("DE", "electricitymaps:lifecycle", "history")
    back = from_row(row, provider="electricitymaps", source="EM", origin="cached")
    assert back.start == T and back.issued_at == s.issued_at and back.step_s == 3600
    assert back.values[0] == 1.5 and np.isnan(back.values[1]) and back.flags[1] == GAP
    assert back.flags_text() == "m-m"


def test_history_overlap_query_and_order(store) -> None:
    cache = SeriesCache(store, provider="electricitymaps", cache_key="em", source="EM")
    cache.save(series(T, [1] * 24))                                       # day 1
    cache.save(series(T + timedelta(days=1), [2] * 24))                   # day 2
    cache.save(series(T + timedelta(hours=12), [3] * 6,
                      fetched=T + timedelta(days=3)))                     # refetch, newer
    got = cache.history("DE", T + timedelta(hours=20), T + timedelta(hours=26))
    assert [s.values[0] for s in got] == [1, 2]
    got = cache.history("DE", T + timedelta(hours=10), T + timedelta(hours=13))
    assert [s.values[0] for s in got] == [1, 3]  # oldest fetch first: newer overwrite
    assert cache.history("DE", T + timedelta(days=5), T + timedelta(days=6)) == []


def test_prune_keeps_the_newest_forecast_for_fallback(store) -> None:
    old = T - timedelta(days=30)
    for i in range(3):
        store.save_series(to_row(series(old + timedelta(hours=i), [1, 2], kind="forecast",
                                        issued=old + timedelta(hours=i),
                                        fetched=old + timedelta(hours=i)), "em"))
    store.save_series(to_row(series(old, [1], fetched=old), "em"))  # old history
    assert store.prune_series(T) == 3
    row = store.latest_series("DE", "em", "forecast")
    assert row is not None and row.issued_at == old + timedelta(hours=2)
