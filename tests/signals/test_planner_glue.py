"""The signals as the instance builder's carbon source, and a matrix a plan can keep."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from carbonplan.config import parse_config
from carbonplan.domain import Job, JobState
from carbonplan.planner.build import build_instance
from carbonplan.signals.change import detect_change
from carbonplan.signals.matrix import CIMatrix
from carbonplan.signals.service import SignalService
from carbonplan.signals.typical import typical_slots

from .conftest import carbon

NOW = datetime(2026, 11, 23, 10, 17, 42, tzinfo=UTC)
T0 = NOW.replace(minute=0, second=0)  # the builder aligns slots to the slot grid
SITE = parse_config({
    "regions": [{"name": "north", "zone": "SE"}, {"name": "sunny", "zone": "US-CAL-CISO"}],
    "pools": [{"region": "north", "accelerator": "a100-80gb", "market": "owned", "capacity": 4},
              {"region": "sunny", "accelerator": "a100-80gb", "market": "owned",
               "capacity": 4}],
}).to_site()


def job() -> Job:
    return Job(id=1, state=JobState.QUEUED, name="j", user="u", project="p", command=["true"],
               hours=2.0, deadline=NOW + timedelta(hours=12), submitted_at=NOW, updated_at=NOW)


def test_the_service_is_the_builders_carbon_source() -> None:
    svc = SignalService(carbon())
    r = build_instance([job()], SITE, svc.carbon_source, now=NOW)
    inst = r.inst
    cal = typical_slots("US-CAL-CISO", T0, inst.n_slots, 3600)
    # the offline model's 15-minute points resampled to hour-aligned slots
    assert np.allclose(inst.ci_g_per_kwh[r.pools.index("sunny/a100-80gb/owned")], cal,
                       rtol=1e-3)
    assert inst.meta["carbon"]["zones"]["SE"]["origin"] == "model"
    assert svc.last_matrix is not None and svc.last_matrix.t0 == T0


def test_a_kept_matrix_round_trips_through_json_and_serves_the_builder() -> None:
    import json

    svc = SignalService(carbon())
    n = build_instance([job()], SITE, svc.carbon_source, now=NOW).inst.n_slots
    m = svc.build_ci_matrix(["SE", "US-CAL-CISO"], T0, n, 1.0)
    back = CIMatrix.from_json_dict(json.loads(json.dumps(m.to_json_dict())))
    assert back.zones == m.zones and back.provenance == m.provenance
    assert np.allclose(back.ci_g_per_kwh, m.ci_g_per_kwh, atol=0.005)
    assert not detect_change(m, back).matters
    r = build_instance([job()], SITE, back.as_source(), now=NOW)
    assert r.inst.ci_g_per_kwh.shape == (2, n)
    with pytest.raises(ValueError, match=f"covers {n} slots"):
        back.as_source()(["SE"], T0, n + 1, 1.0)
