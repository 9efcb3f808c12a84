"""Prometheus metrics and the health endpoint of the daemon.

Each `Metrics` has its own registry (tests run several side by side). `serve()` answers
`/metrics` (Prometheus text format) and `/healthz` (JSON: 200 while cycles complete on time, 503
when the last one is older than `stale_after_s` or the daemon stopped) on 127.0.0.1 by default.
The Grafana dashboard in examples/grafana-dashboard.json is built on these names.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.jobs = Gauge("carbonplan_jobs", "Jobs by state", ["state"], registry=r)
        self.planned_kg = Gauge("carbonplan_planned_kgco2e",
                                "Projected kgCO2e of the current plan (operational + embodied)",
                                registry=r)
        self.planned_usd = Gauge("carbonplan_planned_usd", "Projected $ of the current plan",
                                 registry=r)
        self.realized_kg = Gauge("carbonplan_realized_kgco2e",
                                 "kgCO2e of the jobs that ended, every run (interrupted ones "
                                 "included), from their measured or modelled energy and the "
                                 "carbon intensity while they ran", registry=r)
        self.savings_kg = Gauge("carbonplan_projected_savings_kgco2e",
                                "kgCO2e the current plan saves against running every job now in "
                                "its home region", registry=r)
        self.savings_usd = Gauge("carbonplan_projected_savings_usd",
                                 "$ the current plan saves against run-now", registry=r)
        self.intensity = Gauge("carbonplan_carbon_intensity_g_per_kwh",
                               "Current carbon intensity per grid zone", ["zone", "source"],
                               registry=r)
        self.replans = Counter("carbonplan_replans", "Re-plans by trigger", ["trigger"],
                               registry=r)
        self.solve_seconds = Histogram("carbonplan_solve_seconds", "Planner wall time",
                                       buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
                                       registry=r)
        self.gap = Gauge("carbonplan_plan_gap", "Relative gap of the current plan to its bound",
                         registry=r)
        self.apply_errors = Counter("carbonplan_apply_errors", "Failed executor actions",
                                    ["executor", "kind"], registry=r)
        self.actions = Counter("carbonplan_actions", "Executor actions applied",
                               ["executor", "kind"], registry=r)
        self.cycle_seconds = Histogram("carbonplan_cycle_seconds", "Daemon cycle wall time",
                                       buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
                                       registry=r)
        self.last_cycle = Gauge("carbonplan_last_cycle_timestamp_seconds",
                                "Unix time the last cycle ended", registry=r)
        self.leader = Gauge("carbonplan_leader", "1 while this daemon holds the planning lease",
                            registry=r)
        self.cycle_errors = Counter("carbonplan_cycle_errors", "Cycles that ended in an error",
                                    ["stage"], registry=r)
        self.gpu_power = Gauge("carbonplan_gpu_power_watts",
                               "Power draw of this host's GPUs (NVML; local executor)",
                               ["gpu", "name"], registry=r)
        self.gpu_power_limit = Gauge("carbonplan_gpu_power_limit_watts",
                                     "Enforced power limit of this host's GPUs (NVML)",
                                     ["gpu", "name"], registry=r)
        self._stopped = False
        self._last_ok = 0.0
        self._is_leader = False

    def cycle_done(self, leader: bool) -> None:
        self._last_ok = time.time()
        self._is_leader = leader
        self.last_cycle.set(self._last_ok)
        self.leader.set(1 if leader else 0)

    def stopped(self) -> None:
        self._stopped = True

    def health(self, stale_after_s: float) -> tuple[int, dict]:
        age = time.time() - self._last_ok if self._last_ok else None
        ok = not self._stopped and age is not None and age <= stale_after_s
        body = {"status": "ok" if ok else ("stopped" if self._stopped else "stale"),
                "leader": self._is_leader,
                "last_cycle_age_s": None if age is None else round(age, 3)}
        return (200 if ok else 503), body

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1",
              stale_after_s: float = 900.0) -> ThreadingHTTPServer:
        """Serve /metrics and /healthz in a background thread; returns the server (port 0 picks
        a free port: read `server.server_address`)."""
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    code, ctype, body = 200, CONTENT_TYPE_LATEST, metrics.render()
                elif path in ("/healthz", "/health"):
                    code, data = metrics.health(stale_after_s)
                    ctype, body = "application/json", json.dumps(data).encode()
                else:
                    code, ctype, body = 404, "text/plain", b"not found\n"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="carbonplan-metrics",
                         daemon=True).start()
        return server
