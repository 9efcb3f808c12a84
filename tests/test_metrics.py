"""/metrics and /healthz over real HTTP."""

import json
import urllib.error
import urllib.request

from carbonplan.metrics import Metrics


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_and_health_endpoints() -> None:
    m = Metrics()
    server = m.serve(0, stale_after_s=60)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        code, body = get(base + "/healthz")
        assert code == 503 and json.loads(body)["status"] == "stale"  # no cycle yet
        m.jobs.labels(state="queued").set(3)
        m.intensity.labels(zone="SE", source="estimate").set(31.5)
        m.replans.labels(trigger="forecast").inc()
        m.solve_seconds.observe(0.7)
        m.cycle_done(leader=True)
        code, body = get(base + "/healthz")
        assert code == 200 and json.loads(body) == {"status": "ok", "leader": True,
                                                     "last_cycle_age_s": json.loads(body)[
                                                         "last_cycle_age_s"]}
        code, text = get(base + "/metrics")
        assert code == 200
        assert 'carbonplan_jobs{state="queued"} 3.0' in text
        assert 'carbonplan_carbon_intensity_g_per_kwh{source="estimate",zone="SE"} 31.5' in text
        assert 'carbonplan_replans_total{trigger="forecast"} 1.0' in text
        assert "carbonplan_leader 1.0" in text
        assert get(base + "/nope")[0] == 404
        m.stopped()
        assert json.loads(get(base + "/healthz")[1])["status"] == "stopped"
    finally:
        server.shutdown()


def test_grafana_dashboard_queries_exported_metrics() -> None:
    import re
    from pathlib import Path

    dash = json.loads((Path(__file__).parents[1] / "examples" / "grafana-dashboard.json")
                      .read_text())
    exported = set()
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    for fam in Metrics().registry.collect():
        exported.update(fam.name + s for s in suffixes[fam.type])
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 15
    names = {n for e in exprs for n in re.findall(r"\bcarbonplan_[a-z0-9_]+", e)}
    missing = {n for n in names if n not in exported}
    assert not missing, f"dashboard uses metrics the daemon does not export: {missing}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
