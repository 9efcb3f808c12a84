"""FunctionSignals: a function of (zone, time) served as forecasts and history."""

from datetime import UTC, datetime, timedelta

import numpy as np

from carbonplan.signals.change import detect_change
from carbonplan.signals.scripted import FunctionSignals

T0 = datetime(2026, 11, 23, 10, tzinfo=UTC)


def test_matrix_history_and_change() -> None:
    sig = FunctionSignals(lambda z, t: 100.0 + (t - T0).total_seconds() / 60 if z == "SE"
                          else 400.0)
    rows, meta = sig.carbon_source(["DE", "SE", "DE"], T0, 3, 1 / 60)
    assert rows.tolist() == [[400, 400, 400], [100, 101, 102], [400, 400, 400]]
    assert sig.last_matrix.zones == ("DE", "SE")
    hist = sig.history("SE", T0, T0 + timedelta(minutes=2), slot_h=1 / 60)
    assert np.allclose(hist.values, [100, 101])
    before = sig.build_ci_matrix(["SE"], T0, 5, 1 / 60)
    sig.fn = lambda z, t: 500.0
    after = sig.build_ci_matrix(["SE"], T0, 5, 1 / 60)
    assert detect_change(before, after).matters
