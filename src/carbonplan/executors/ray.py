"""The Ray executor: each pool's jobs go to a Ray cluster through its Jobs API (docs/ray.md).

Ray has no begin time, so a job stays in carbonplan's queue until its planned slot and the daemon
issues START then. START submits the job with submission id `carbonplan-<job>-<attempt>`, the
pool's resource shape (GPUs, region and market markers, MIG slices), a runtime_env (working_dir,
env vars) and metadata naming the placement; a retry after a crash finds that submission id and
does not submit again. `poll` maps Ray's job statuses to job states and returns a job that lost its
node or cluster to the queue, with the work saved by its checkpoints.

Ray is optional: it is imported inside the methods that talk to a cluster, never at module import.
Imports domain, config, formulas and the executor protocol only.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonplan.domain import Job, JobState, Pool, Site
from carbonplan.energy.formulas import MIG_SLICES_PER_GPU, checkpointed_h
from carbonplan.errors import InputError
from carbonplan.executors.base import (
    Action,
    ActionKind,
    ActionResult,
    Capabilities,
    DiscoveredJob,
    JobUpdate,
)

if TYPE_CHECKING:
    from carbonplan.config import RayPoolEntry, SiteConfig

log = logging.getLogger(__name__)

META = "carbonplan_"  # prefix of the metadata keys carbonplan sets on a Ray job

# Ray's error types for failures of the cluster, not of the job's command: the job never ran to
# its end because its supervisor could not start or died with its node; it goes back to the queue.
INFRA_ERRORS = frozenset({
    "JOB_SUPERVISOR_ACTOR_START_TIMEOUT",   # no node had its resources in time
    "JOB_SUPERVISOR_ACTOR_START_FAILURE",
    "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE",
    "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE",
    "JOB_SUPERVISOR_ACTOR_DIED",            # its node went away (spot reclaim)
})


class Unreachable(Exception):
    """A cluster did not answer (connection refused, timeout, no such host)."""


class RayApiError(Exception):
    """The Jobs API answered with an error status."""

    def __init__(self, status: int | None, text: str) -> None:
        self.status = status
        self.text = text
        super().__init__(text)


def submission_id(job_id: int, attempt: int) -> str:
    """The Ray submission id of one attempt: the same attempt always gets the same id."""
    return f"carbonplan-{job_id}-{attempt}"


def parse_submission_id(sid: str) -> tuple[int, int] | None:
    """'carbonplan-<job>-<attempt>' -> (job, attempt); None for anyone else's submission."""
    m = re.fullmatch(r"carbonplan-(\d+)-(\d+)", sid)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_ref(ref: str) -> tuple[str, str]:
    """'<cluster>:<submission id>' -> (cluster, submission id)."""
    cluster, _, sid = ref.rpartition(":")
    return cluster, sid


@dataclass(frozen=True)
class Shape:
    """What one job asks of a Ray cluster for its entrypoint."""

    num_gpus: float
    resources: dict[str, float] = field(default_factory=dict)
    num_cpus: float | None = None


def resource_shape(pool: Pool, units: int, override: RayPoolEntry | None = None) -> Shape:
    """The pool's resource shape for a job of `units` GPUs (or MIG instances).

    By convention each node advertises `region:<region>` and its market (`spot`, `on_demand`,
    `owned`) as custom resources, with a large count: a job asks for 1 of each, so it can only run
    on a node of its planned region and market. A MIG instance is the custom resource
    `mig:<profile>` (Ray has no MIG support of its own) and takes no whole GPU. A pool override
    replaces the region and market markers.
    """
    markers = dict(override.resources) if override and override.resources is not None else {
        f"region:{pool.region}": 1.0, pool.market.value: 1.0}
    num_cpus = override.num_cpus if override else None
    if pool.mig:
        return Shape(0, {**markers, f"mig:{pool.mig}": float(units)}, num_cpus)
    return Shape(float(units), markers, num_cpus)


def entrypoint(job: Job) -> str:
    """The job's command as one shell string, every argument quoted.

    Ray runs an entrypoint through a shell by design; carbonplan never builds it from unquoted
    parts, so an argument such as `a b; rm -rf ~` reaches the program as one argument.

    Raises:
        ValueError: a batch-script job whose script is not inside its workdir (Ray uploads only
            the workdir).
    """
    if job.command:
        return shlex.join(job.command)
    assert job.script is not None
    script = Path(job.script)
    if job.workdir and "://" not in job.workdir and script.is_relative_to(job.workdir):
        return shlex.join(["bash", str(script.relative_to(job.workdir))])
    raise ValueError(f"batch script {script} is not inside the job's workdir; Ray uploads only "
                     "the workdir (submit with --workdir, or as a command after '--')")


def runtime_env(job: Job, attempt: int, pool: str) -> dict[str, Any]:
    """working_dir (uploaded by Ray from this machine, or a remote URI) and env vars."""
    env = {**job.env, "CARBONPLAN_JOB_ID": str(job.id), "CARBONPLAN_ATTEMPT": str(attempt),
           "CARBONPLAN_POOL": pool}
    out: dict[str, Any] = {"env_vars": env}
    if job.workdir:
        out["working_dir"] = job.workdir
    return out


def pool_speed(site: Site, pool: Pool) -> float:
    """Reference-GPU hours per hour of the pool's unit (slice share for MIG)."""
    acc = site.accelerators[pool.accelerator]
    if pool.mig:
        return acc.speed * acc.mig_profiles[pool.mig].slices / MIG_SLICES_PER_GPU
    return acc.speed


def _ms(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, UTC) if value else None


def _short(text: str, limit: int = 300) -> str:
    """The last meaningful line of a Ray error (its server replies carry whole tracebacks)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip().strip(".")]
    line = lines[-1] if lines else str(text)
    return line if len(line) <= limit else line[:limit] + "..."


def _client_factory(timeout_s: float) -> Callable[[str], Any]:
    """JobSubmissionClient with a timeout on every request (Ray's has none: a silent cluster
    would hang the daemon). Raises InputError when Ray is not installed."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise InputError("config executor.kind", f"is 'ray' but Ray is not installed ({exc}); "
                         "install it with: pip install 'carbonplan[ray]'") from None

    class _Client(JobSubmissionClient):  # type: ignore[misc, valid-type]
        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout_s)
            return super()._do_request(method, endpoint, **kwargs)

    return _Client


class RayExecutor:
    """Runs each attempt as one Ray job on the cluster of its pool. Keeps no job state: handles
    ('<cluster>:<submission id>') are stored with the job. It only remembers, in memory, when it
    last saw each submission running and since when each cluster has been silent; losing that on
    a restart only makes the loss detection slower and the checkpoint credit smaller."""

    name = "ray"
    capabilities = Capabilities(starts_at_begin_time=False, reports_preemption=True,
                                has_logs=True)

    def __init__(self, clusters: dict[str, str], site: Site, *,
                 cluster_of: Callable[[Pool], str | None],
                 overrides: dict[str, RayPoolEntry] | None = None,
                 lost_after: timedelta = timedelta(minutes=10), request_timeout_s: float = 30.0,
                 site_name: str = "carbonplan",
                 client_factory: Callable[[str], Any] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clusters = dict(clusters)
        self.site = site
        self.pools = {p.name: p for p in site.pools}
        self._cluster_of = cluster_of
        self.overrides = dict(overrides or {})
        self.lost_after = lost_after
        self.site_name = site_name
        self._make_client = client_factory or _client_factory(request_timeout_s)
        self._clock = clock
        self._clients: dict[str, Any] = {}
        self._silent_since: dict[str, datetime] = {}   # cluster -> first failed contact
        self._seen_running: dict[str, datetime] = {}   # submission id -> last seen RUNNING
        self._swept: set[str] = set()  # clusters checked for stale attempts since they answered
        self._sweep_failed: dict[str, datetime] = {}   # cluster -> last failed sweep

    @classmethod
    def from_config(cls, cfg: SiteConfig) -> RayExecutor:
        from carbonplan.timeparse import parse_duration

        ray = cfg.executor.ray
        return cls({n: c.address for n, c in ray.clusters.items()}, cfg.to_site(),
                   cluster_of=ray.cluster_of, overrides=ray.pools,
                   lost_after=parse_duration(ray.lost_after, "config executor.ray.lost_after",
                                             allow_zero=True),
                   request_timeout_s=ray.request_timeout_s, site_name=cfg.site.name)

    # -- protocol ------------------------------------------------------------------------------

    def discover(self) -> list[DiscoveredJob]:
        return []  # jobs submitted to Ray directly are not carbonplan's to plan

    def apply(self, action: Action) -> ActionResult:
        if action.kind == ActionKind.START:
            return self._start(action)
        if action.kind == ActionKind.CANCEL:
            return self._cancel(action.job)
        p = action.placement
        if p is not None:
            where = self._where(p.pool)
            if isinstance(where, ActionResult):
                return where
        return ActionResult(ok=True, detail="kept in carbonplan's queue until its slot")

    def poll(self, jobs: Sequence[Job]) -> list[JobUpdate]:
        now = self._clock()
        updates: list[JobUpdate] = []
        down: dict[str, str] = {}  # clusters that did not answer in this poll: ask them once
        for job in jobs:
            if job.executor != self.name or not job.executor_ref or \
                    job.state not in (JobState.SUBMITTED, JobState.RUNNING):
                continue
            cluster, sid = parse_ref(job.executor_ref)
            try:
                if cluster in down:
                    raise Unreachable(down[cluster])
                info = self._call(cluster, "get_job_info", sid)
            except Unreachable as exc:
                down[cluster] = str(exc)
                self._swept.discard(cluster)  # when it answers again, look for stale attempts
                u = self._silent(job, cluster, sid, now, str(exc))
            except RayApiError as exc:
                if exc.status != 404:
                    continue  # the API is there but failing: ask again next time
                self._silent_since.pop(cluster, None)
                u = self._lost(job, sid, self._seen_running.get(sid),
                               f"lost: Ray cluster {cluster} no longer knows {sid} "
                               "(its head restarted)")
            else:
                self._silent_since.pop(cluster, None)
                u = self._update(job, cluster, sid, info, now)
            if u is not None:
                updates.append(u)
        self._sweep(jobs, down, now)
        return updates

    def _sweep(self, jobs: Sequence[Job], down: dict[str, str], now: datetime) -> None:
        """Stop attempts carbonplan gave up on that still run somewhere.

        A cluster declared lost may only have been cut off (a partition, not a death): when it
        answers again, an attempt of a job that since went back to the queue or started again
        elsewhere would run the job twice. Once per cluster after it (re)appears, and at this
        executor's first contact (a restarted daemon), every live submission of this site is
        checked against the job's current attempt: older attempts, and the current one of a job
        that is back in the queue, are stopped. A newer attempt than the store knows is never
        touched: that is a start whose record a crash lost, which the retry adopts.
        """
        mine = {j.id: j for j in jobs if j.executor == self.name}
        retry_after = max(self.lost_after, timedelta(seconds=60))
        for cluster in self.clusters:
            if cluster in self._swept or cluster in down or \
                    now - self._sweep_failed.get(cluster, now - retry_after) < retry_after:
                continue
            try:
                listed = self._call(cluster, "list_jobs")
                for info in listed:
                    ids = parse_submission_id(info.submission_id or "")
                    if ids is None or info.status.is_terminal() or \
                            (info.metadata or {}).get(f"{META}site") != self.site_name:
                        continue
                    job = mine.get(ids[0])
                    if job is None or not (ids[1] < job.attempt or (
                            ids[1] == job.attempt and job.state == JobState.QUEUED)):
                        continue
                    self._call(cluster, "stop_job", info.submission_id)
                    self._seen_running.pop(info.submission_id, None)
                    log.warning("stopped %s on Ray cluster %s: job %d is on attempt %d %s",
                                info.submission_id, cluster, job.id, job.attempt,
                                job.state.value)
            except (Unreachable, RayApiError) as exc:
                self._sweep_failed[cluster] = now
                log.info("stale-attempt check of Ray cluster %s failed: %s", cluster, exc)
                continue
            self._swept.add(cluster)
            self._sweep_failed.pop(cluster, None)

    def logs(self, job: Job, tail: int | None = None) -> str:
        """The job's driver output from its cluster.

        Raises:
            ConnectionError: the cluster does not answer.
        """
        if not job.executor_ref:
            return f"job {job.id} has not started yet"
        cluster, sid = parse_ref(job.executor_ref)
        try:
            text = self._call(cluster, "get_job_logs", sid)
        except Unreachable as exc:
            raise ConnectionError(str(exc)) from None
        except RayApiError as exc:
            if exc.status == 404:
                return f"Ray cluster {cluster} no longer has {sid} (its logs are gone)"
            raise ConnectionError(f"Ray cluster {cluster}: {_short(exc.text)}") from None
        lines = text.splitlines()
        return "\n".join(lines[-tail:] if tail else lines)

    # -- actions -------------------------------------------------------------------------------

    def _where(self, pool_name: str) -> tuple[Pool, str] | ActionResult:
        pool = self.pools.get(pool_name)
        if pool is None:
            return ActionResult(ok=False, detail=f"unknown pool '{pool_name}'")
        cluster = self._cluster_of(pool)
        if cluster is None or cluster not in self.clusters:
            return ActionResult(ok=False, detail=f"pool '{pool_name}' has no Ray cluster")
        return pool, cluster

    def _start(self, action: Action) -> ActionResult:
        job, p = action.job, action.placement
        assert p is not None, "START needs a placement"
        where = self._where(p.pool)
        if isinstance(where, ActionResult):
            return where
        pool, cluster = where
        sid = submission_id(job.id, action.attempt)
        ref = f"{cluster}:{sid}"
        try:
            cmd = entrypoint(job)
        except ValueError as exc:
            return ActionResult(ok=False, detail=str(exc))
        if job.workdir and "://" not in job.workdir and not Path(job.workdir).is_dir():
            return ActionResult(ok=False, detail=f"workdir {job.workdir} is not a directory "
                                                 "on this machine (Ray uploads it from here)")
        shape = resource_shape(pool, job.gpus, self.overrides.get(pool.name))
        meta = {f"{META}site": self.site_name, f"{META}job": str(job.id),
                f"{META}submitted": job.submitted_at.isoformat(),
                f"{META}attempt": str(action.attempt), f"{META}pool": pool.name,
                f"{META}cluster": cluster,
                f"{META}plan": "" if action.plan_id is None else str(action.plan_id),
                f"{META}start": p.start.isoformat(), f"{META}end": p.end.isoformat()}
        try:
            known = self._info_or_none(cluster, sid)
            if known is not None:
                return self._adopt(known, job, ref, cluster)
            self._call(cluster, "submit_job", entrypoint=cmd, submission_id=sid,
                       runtime_env=runtime_env(job, action.attempt, pool.name), metadata=meta,
                       entrypoint_num_gpus=shape.num_gpus or None,
                       entrypoint_resources=shape.resources or None,
                       entrypoint_num_cpus=shape.num_cpus)
        except Unreachable as exc:
            return ActionResult(ok=False, detail=str(exc), retryable=True)
        except RayApiError as exc:
            if "already exists" in exc.text:  # submitted meanwhile (a concurrent retry)
                return ActionResult(ok=True, ref=ref, detail=f"already submitted to {cluster}")
            return ActionResult(ok=False, detail=f"Ray cluster {cluster}: {_short(exc.text)}",
                                retryable=exc.status is None or exc.status >= 500)
        return ActionResult(ok=True, ref=ref, detail=f"submitted to Ray cluster {cluster}")

    def _adopt(self, info: Any, job: Job, ref: str, cluster: str) -> ActionResult:
        """An attempt already submitted (a retry after a crash): record it, submit nothing.

        The submission must be this job's: another site, or this site before its store was
        reset, may have used the same id, and adopting it would mean never running this job.
        """
        meta = info.metadata or {}
        owner = (meta.get(f"{META}site"), meta.get(f"{META}submitted"))
        if owner != (self.site_name, job.submitted_at.isoformat()):
            return ActionResult(ok=False, detail=f"Ray cluster {cluster} already has "
                                f"{parse_ref(ref)[1]} from another job (carbonplan site "
                                f"'{owner[0]}', submitted {owner[1]}); remove it with "
                                "`ray job delete` or use a fresh job")
        return ActionResult(ok=True, ref=ref, detail=f"already submitted to {cluster} "
                                                      f"({info.status.value})")

    def _cancel(self, job: Job) -> ActionResult:
        if job.executor != self.name or not job.executor_ref:
            return ActionResult(ok=True, detail="not started")
        cluster, sid = parse_ref(job.executor_ref)
        self._seen_running.pop(sid, None)
        try:
            stopped = self._call(cluster, "stop_job", sid)
        except Unreachable as exc:
            return ActionResult(ok=False, detail=str(exc), retryable=True)
        except RayApiError as exc:
            if exc.status == 404:
                return ActionResult(ok=True, detail=f"{sid} is not on Ray cluster {cluster}")
            return ActionResult(ok=False, detail=f"Ray cluster {cluster}: {_short(exc.text)}",
                                retryable=True)
        return ActionResult(ok=True, detail="stop requested" if stopped else "not running")

    # -- status --------------------------------------------------------------------------------

    def _update(self, job: Job, cluster: str, sid: str, info: Any,
                now: datetime) -> JobUpdate | None:
        status = info.status.value
        if status == "PENDING":
            return None
        if status == "RUNNING":
            self._seen_running[sid] = now
            if job.state == JobState.SUBMITTED:
                return JobUpdate(job.id, JobState.RUNNING, reason=f"running on Ray cluster "
                                 f"{cluster}", started_at=now)
            return None
        self._seen_running.pop(sid, None)
        ended = _ms(info.end_time) or now
        started = job.started_at or _ms(info.start_time)
        if status == "SUCCEEDED":
            return JobUpdate(job.id, JobState.SUCCEEDED, reason=f"succeeded on Ray cluster "
                             f"{cluster}", started_at=started, ended_at=ended,
                             exit_code=info.driver_exit_code or 0)
        error = str(getattr(info.error_type, "value", info.error_type) or "")
        if status == "STOPPED" or error in INFRA_ERRORS or \
                (status == "FAILED" and not error and info.driver_exit_code is None):
            why = "stopped outside carbonplan" if status == "STOPPED" else error or "failed"
            return self._lost(job, sid, ended, f"lost on Ray cluster {cluster}: {why} "
                                               f"({_short(info.message or '')})")
        return JobUpdate(job.id, JobState.FAILED, reason=f"failed on Ray cluster {cluster}: "
                         f"{_short(info.message or error)}", started_at=started, ended_at=ended,
                         exit_code=info.driver_exit_code)

    def _silent(self, job: Job, cluster: str, sid: str, now: datetime,
                detail: str) -> JobUpdate | None:
        """A cluster that stays silent for `lost_after` has lost its jobs (its head is gone)."""
        since = self._silent_since.setdefault(cluster, now)
        if now - since < self.lost_after:
            return None
        return self._lost(job, sid, self._seen_running.get(sid),
                          f"lost: {detail} since {since.isoformat(timespec='seconds')}")

    def _lost(self, job: Job, sid: str, ended: datetime | None, reason: str) -> JobUpdate:
        """Back to the queue with the work its checkpoints saved (docs/ray.md, "Preemption")."""
        self._seen_running.pop(sid, None)
        return JobUpdate(job.id, JobState.QUEUED, reason=reason, ended_at=ended,
                         done_h=self.checkpointed(job, ended))

    def checkpointed(self, job: Job, ended: datetime | None) -> float:
        """Reference-GPU hours done and checkpointed after the current attempt ended at `ended`.

        The attempt's run time counts from when carbonplan first saw it running (`started_at`)
        to `ended` (Ray's end time, or the last time carbonplan saw it running when its cluster
        vanished): both err towards less work, never more.
        """
        pool = self.pools.get(job.ran_pool or "")
        if not job.checkpoint_every_h or job.started_at is None or ended is None or pool is None:
            return job.done_h
        run_h = max((ended - job.started_at).total_seconds(), 0.0) / 3600.0
        saved = checkpointed_h(run_h, job.checkpoint_every_h, job.checkpoint_cost_h,
                               pool_speed(self.site, pool), resumed=job.done_h > 0)
        return min(job.hours, job.done_h + saved)

    # -- talking to clusters -------------------------------------------------------------------

    def _info_or_none(self, cluster: str, sid: str) -> Any:
        try:
            return self._call(cluster, "get_job_info", sid)
        except RayApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _call(self, cluster: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One Jobs API call; errors become Unreachable (names the cluster) or RayApiError."""
        import requests

        address = self.clusters.get(cluster)
        if address is None:
            raise Unreachable(f"Ray cluster {cluster} is not in the config "
                              "(executor.ray.clusters)")
        try:
            client = self._clients.get(cluster)
            if client is None:
                client = self._clients[cluster] = self._make_client(address)
            return getattr(client, method)(*args, **kwargs)
        except (requests.RequestException, ConnectionError) as exc:
            self._clients.pop(cluster, None)
            errno = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
            why = "timed out" if isinstance(exc, requests.Timeout) else \
                errno.group(0) if errno else "connection failed"
            raise Unreachable(f"Ray cluster {cluster} ({address}) is unreachable: {why}") \
                from None
        except RuntimeError as exc:
            m = re.search(r"status code (\d{3})", str(exc))
            raise RayApiError(int(m.group(1)) if m else None, str(exc)) from None
