"""Two real single-node Slurm clusters (scripts/services/slurm.sh) and helpers to drive them.

The clusters run carbonplan.lua from plugins/slurm with the example job_submit.lua. Tests that
change the Lua files restore them; every job a test submits is cancelled after it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from carbonplan.config import SiteConfig, parse_config
from carbonplan.domain import Job, JobState
from carbonplan.executors.base import Executor
from carbonplan.executors.slurm import SlurmExecutor
from carbonplan.store import open_store
from carbonplan.store.repo import Store

PLUGINS = Path(__file__).parents[3] / "plugins" / "slurm"
ENV = {"north": "CARBONPLAN_TEST_SLURM_NORTH", "central": "CARBONPLAN_TEST_SLURM_CENTRAL"}


def slurm_conf(cluster: str) -> str:
    conf = os.environ.get(ENV[cluster])
    if not conf or not shutil.which("sbatch"):
        pytest.skip(f"no Slurm: set {ENV[cluster]} (scripts/test starts two clusters)")
    return conf


@dataclass
class Cluster:
    """One test cluster: submit with sbatch, read squeue, edit its job_submit/lua files."""

    name: str
    conf: str
    workdir: Path
    submitted: list[int] = field(default_factory=list)

    @property
    def etc(self) -> Path:
        return Path(self.conf).parent

    @property
    def log(self) -> Path:
        return self.etc.parent / "log" / "slurmctld.log"

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": self.conf}

    def cmd(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env=self.env(), capture_output=True, text=True,
                              timeout=30, check=False)

    def sbatch(self, *args: str, script: str = "true") -> tuple[int | None, str]:
        """Submit; (job id or None when rejected, sbatch's stderr)."""
        cp = self.cmd("sbatch", "--parsable", "-D", str(self.workdir),
                      "-o", str(self.workdir / "%j.out"), *args, "--wrap", script)
        if cp.returncode != 0:
            return None, cp.stderr
        jid = int(cp.stdout.strip().split(";")[0])
        self.submitted.append(jid)
        return jid, cp.stderr

    def job(self, jid: int) -> dict[str, Any] | None:
        out = self.cmd("squeue", "--json")
        assert out.returncode == 0, out.stderr
        return next((j for j in json.loads(out.stdout)["jobs"] if j["job_id"] == jid), None)

    def output(self, jid: int) -> str:
        p = self.workdir / f"{jid}.out"
        return p.read_text() if p.exists() else ""

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int) -> str:
        with open(self.log, errors="replace") as fh:
            fh.seek(offset)
            return fh.read()

    # -- the Lua files -------------------------------------------------------------------------

    def write_lua(self, name: str, text: str) -> None:
        """Write a Lua file and touch job_submit.lua so slurmctld reloads both at next submit.

        slurmctld reloads the script only when its mtime (whole seconds) is newer than at the
        last load, so the mtime moves past both the old mtime and the clock.
        """
        script = self.etc / "job_submit.lua"
        old = int(script.stat().st_mtime)
        (self.etc / name).write_text(text)
        t = max(old + 1, int(time.time()) + 1)
        os.utime(script, (t, t))

    @contextmanager
    def lua(self, *, settings: dict[str, str] | None = None, module: str | None = None,
            before: str = "", job_submit: str | None = None) -> Iterator[None]:
        """Run with other carbonplan settings, another module text or a whole job_submit.lua."""
        js = (PLUGINS / "job_submit.lua").read_text()
        for key, value in (settings or {}).items():
            js, n = re.subn(rf"( {key} = )[^,\n]*,", rf"\g<1>{value},", js)
            assert n == 1, key
        if before:
            js = js.replace("   -- ... the site's own policies go here ...", before)
        try:
            if module is not None:
                (self.etc / "carbonplan.lua").write_text(module)
            self.write_lua("job_submit.lua", job_submit if job_submit is not None else js)
            yield
        finally:
            (self.etc / "carbonplan.lua").write_text((PLUGINS / "carbonplan.lua").read_text())
            self.write_lua("job_submit.lua", (PLUGINS / "job_submit.lua").read_text())

    def cancel_all(self) -> None:
        if self.submitted:
            self.cmd("scancel", *map(str, self.submitted))


@pytest.fixture
def north(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster("north", slurm_conf("north"), tmp_path)
    yield c
    c.cancel_all()


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster("central", slurm_conf("central"), tmp_path)
    yield c
    c.cancel_all()


def site_config(north: str, central: str, *, accounting: bool = False,
                federation: bool = False) -> SiteConfig:
    """The test site: cluster north's partitions a and b are two regions, central a third.

    With `accounting`, both clusters read finished jobs from slurmdbd (plain `sacct`); with
    `federation` (which needs it), jobs may move between the clusters."""
    accounting = accounting or federation
    jobcomp = str(Path(north).parents[1] / "log" / "jobcomp.txt")
    # north reads its jobcomp file directly, central through `sacct -c`
    clusters: dict[str, dict[str, Any]] = {"north": {"slurm_conf": north, "jobcomp": jobcomp},
                                           "central": {"slurm_conf": central}}
    if accounting:
        clusters = {"north": {"slurm_conf": north, "accounting": True},
                    "central": {"slurm_conf": central, "accounting": True}}
    return parse_config({
        "executor": {"kind": "slurm", "slurm": {
            "clusters": clusters,
            "gres": {"a100": "a100-80gb", "a100_3g.40gb": "a100-80gb:3g.40gb",
                     "h100": "h100-sxm"},
            "default_slack": "2h", "start_margin": "1m", "command_timeout_s": 20,
            "federation": federation}},
        "regions": [{"name": "north-a", "zone": "SE"}, {"name": "north-b", "zone": "NO-NO1"},
                    {"name": "central", "zone": "DE"}],
        "pools": [
            {"region": "north-a", "accelerator": "a100-80gb", "market": "owned", "capacity": 4,
             "labels": {"cluster": "north", "partition": "a"}},
            {"region": "north-a", "accelerator": "a100-80gb", "mig": "3g.40gb",
             "market": "owned", "capacity": 2, "labels": {"cluster": "north", "partition": "a"}},
            {"region": "north-b", "accelerator": "a100-80gb", "market": "owned", "capacity": 4,
             "labels": {"cluster": "north", "partition": "b"}},
            {"region": "central", "accelerator": "h100-sxm", "market": "owned", "capacity": 4,
             "labels": {"cluster": "central", "partition": "gpu"}},
        ]})


@pytest.fixture
def cfg() -> SiteConfig:
    return site_config(slurm_conf("north"), slurm_conf("central"))


@pytest.fixture
def ex(cfg: SiteConfig) -> SlurmExecutor:
    return SlurmExecutor(cfg.executor.slurm, cfg.to_site())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(str(tmp_path / "s.db"))
    yield s
    s.close()


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 60.0, every: float = 0.2):
    """fn()'s first truthy value, polling; fails naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(every)


def record_updates(store: Store, job: Job, ex: Executor) -> Job:
    """Apply what poll() reports, as the daemon does; the job after."""
    for u in ex.poll([job]):
        job = store.transition(job.id, u.state, reason=u.reason, actor="daemon",
                               updates=u.job_fields())
    return job


def wait_state(store: Store, ex: Executor, job_id: int, states: set[JobState],
               timeout: float = 90.0) -> Job:
    return wait_for(f"job {job_id} to reach {sorted(states)}",
                    lambda: (j := record_updates(store, store.get_job(job_id), ex)).state
                    in states and j, timeout)
