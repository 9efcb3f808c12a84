"""The Slurm executor: plans jobs users submit with sbatch, and moves them by scontrol.

Users opt in through the site's job_submit.lua (plugins/slurm/carbonplan.lua), which tags the job
in its admin_comment and delays or holds it. This module only translates:
- `discover()`: tagged (or opted-in) pending jobs from `squeue --json` -> JobSpecs: GPU type and
  count from the GRES (mapped to catalog GPUs by `executor.slurm.gres`), run time from the time
  limit or a `carbonplan:hours=H` comment, deadline from `--deadline` or submit + limit + slack;
- `apply()`: a placement -> `scontrol update JobId=.. StartTime=.. Partition=.. Gres=..`, never
  later than deadline - time limit - margin, plus `scontrol release` for a job the module held,
  with the decision written into the admin_comment. Only fields that differ are updated, so
  applying the same plan twice changes nothing. Slurm then starts the job at its begin time;
- `poll()`: job states from `squeue --json`, then sacct or the jobcomp log once a job has left
  the queue.
A region is a partition of a cluster or a whole cluster (each cluster has its own slurm.conf);
pools name theirs in `labels` (`cluster`, `partition`, optionally `gres`). A job stays in the
cluster it was submitted to unless the clusters form a federation (`executor.slurm.federation`).
Retries, the action log and job states live in executors/apply.py and the store; this module
never imports the store or the planner (domain, config, sbatch, timeparse, formulas and the
executor protocol only).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from carbonplan.config import SlurmExecutorSection
from carbonplan.domain import Job, JobSpec, JobState, Site
from carbonplan.energy.formulas import MIG_SLICES_PER_GPU
from carbonplan.executors.base import (
    Action,
    ActionKind,
    ActionResult,
    Capabilities,
    DiscoveredJob,
    JobUpdate,
)
from carbonplan.executors.slurm_cli import ClusterCli, Runner, SlurmError
from carbonplan.executors.slurm_formats import (
    FINAL_STATES,
    PENDING_STATES,
    RUNNING_STATES,
    Finished,
    Tag,
    base_state,
    final_record,
    has_word,
    hours_estimate,
    parse_tag,
    wait_status_exit_code,
    with_tag,
)
from carbonplan.sbatch import parse_gpu_gres
from carbonplan.timeparse import parse_duration

log = logging.getLogger("carbonplan.executors.slurm")

NO_VAL = 4294967294      # Slurm's "unset" for 32-bit fields
INFINITE = 4294967295
MOVE_TRIES = 3           # `Clusters=` asked at most this often per move,
MOVE_WAIT_S = 2.0        # each time waiting this long for the other cluster to hold the job


@dataclass(frozen=True)
class Target:
    """Where a pool's jobs go in Slurm."""

    pool: str
    region: str
    cluster: str
    partition: str
    accelerator: str
    mig: str | None
    gres: str | None  # the GRES type of the pool's GPUs (None: not known, not changed)


def _epoch(v: Any) -> int:
    """squeue's times: an int (0 when unset) or, in newer Slurm, {"set":..,"number":..}."""
    if isinstance(v, dict):
        return int(v.get("number", 0)) if v.get("set", True) else 0
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def _when(epoch: int) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if 0 < epoch < NO_VAL else None


def slurm_time(t: datetime) -> str:
    """A time as scontrol reads it: local time of this process, to the second."""
    return t.astimezone().replace(tzinfo=None).isoformat(timespec="seconds")


def _iso_utc(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SlurmExecutor:
    name = "slurm"
    capabilities = Capabilities(starts_at_begin_time=True, discovers_jobs=True,
                                moves_announced_jobs=True)

    def __init__(self, settings: SlurmExecutorSection, site: Site, *,
                 run: Runner | None = None) -> None:
        self.settings = settings
        self.site = site
        self.slack = parse_duration(settings.default_slack, "executor.slurm.default_slack",
                                    allow_zero=True)
        self.margin = parse_duration(settings.start_margin, "executor.slurm.start_margin",
                                     allow_zero=True)
        extra = {"run": run} if run is not None else {}
        self.clusters = {
            name: ClusterCli(name, c.slurm_conf, settings.command_timeout_s, c.accounting,
                             c.jobcomp, settings.federation, **extra)
            for name, c in settings.clusters.items()}
        self.gres_to_gpu: dict[str, tuple[str, str | None]] = {}
        gpu_to_gres: dict[tuple[str, str | None], str] = {}
        for gres, target in settings.gres.items():
            acc, _, mig = target.partition(":")
            self.gres_to_gpu[gres] = (acc, mig or None)
            gpu_to_gres.setdefault((acc, mig or None), gres)
        self.targets: dict[str, Target] = {}
        # restart_cnt of each live job at the last poll, (cluster, job id) -> count
        self._restarts: dict[tuple[str, int], int] = {}
        for p in site.pools:
            if "cluster" in p.labels and "partition" in p.labels:
                self.targets[p.name] = Target(
                    pool=p.name, region=p.region, cluster=p.labels["cluster"],
                    partition=p.labels["partition"], accelerator=p.accelerator, mig=p.mig,
                    gres=p.labels.get("gres") or gpu_to_gres.get((p.accelerator, p.mig)))

    # -- protocol ------------------------------------------------------------------------------

    def discover(self) -> list[DiscoveredJob]:
        """Pending jobs that opted in, from every cluster that answers."""
        out: list[DiscoveredJob] = []
        now = datetime.now(UTC)
        for name, cli in self.clusters.items():
            try:
                recs = cli.jobs()
            except SlurmError as exc:
                log.warning("discover: cluster %s skipped: %s", name, exc)
                continue
            for rec in recs:
                if base_state(str(rec.get("job_state", ""))) != "PENDING":
                    continue
                if self._sibling_copy(name, rec):
                    continue
                if not self._opted_in(rec):
                    continue
                found = self.translate(name, rec, now=now)
                if found is not None:
                    out.append(found)
        return out

    def apply(self, action: Action) -> ActionResult:
        try:
            if action.kind == ActionKind.CANCEL:
                return self._cancel(action.job)
            return self._announce(action)  # START: Slurm starts it; announce "now"
        except SlurmError as exc:
            return ActionResult(ok=False, detail=str(exc), retryable=exc.retryable)

    def poll(self, jobs: Sequence[Job]) -> list[JobUpdate]:
        by_cluster: dict[str, list[tuple[Job, int]]] = defaultdict(list)
        for job in jobs:
            ref = self.ref(job)
            if ref is not None and job.active:
                by_cluster[ref[0]].append((job, ref[1]))
        updates: list[JobUpdate] = []
        listed: dict[str, dict[int, dict[str, Any]]] = {}  # each cluster's squeue, once
        seen, self._restarts = self._restarts, {}  # only jobs still in a queue stay

        def queue(name: str) -> dict[int, dict[str, Any]]:
            if name not in listed:
                listed[name] = self._queue(name)
            return listed[name]

        for name, items in by_cluster.items():
            cli = self.clusters[name]
            try:
                live: dict[int, tuple[str, dict[str, Any]]] = {}
                ran_in: dict[int, str] = {}
                for job, jid in items:
                    where, rec = self._holder(name, jid, queue)
                    if where != name:
                        ran_in[jid] = where
                    elif rec is None and self.settings.federation and job.ran_pool in \
                            self.targets:
                        ran_in[jid] = self.targets[job.ran_pool].cluster
                    if rec is not None:
                        live[jid] = (where, rec)
                gone = [jid for _, jid in items if jid not in live]
                # one read gives a finished job's last run and the runs requeues ended before
                asked = gone + [jid for job, jid in items if jid in live
                                and self._requeued(job, live[jid][0], jid, live[jid][1], seen)]
                history = cli.runs(asked) if asked else {}
                done = {jid: final_record(history[jid], ran_in.get(jid))
                        for jid in gone if jid in history}
            except SlurmError as exc:
                log.warning("poll: cluster %s skipped: %s", name, exc)
                continue
            for job, jid in items:
                if jid in live:
                    where, rec = live[jid]
                    current = _when(_epoch(rec.get("start_time")))
                    if base_state(str(rec.get("job_state", ""))) in PENDING_STATES:
                        current = None  # a pending job's start_time is only an estimate
                    earlier, job = self._interrupted(job, where, [
                        r for r in history.get(jid, []) if r.cluster in ("", where)], current)
                    updates += earlier + self._updates_live(job, where, rec)
                elif jid in done:
                    f = done[jid]
                    where = f.cluster or name  # a federation's records name their cluster
                    earlier, job = self._interrupted(job, where, [
                        r for r in history[jid] if r is not f and r.cluster == f.cluster],
                        f.started_at)
                    updates += earlier + self._updates_done(job, where, f)
        return updates

    def logs(self, job: Job, tail: int | None = None) -> str:
        ref = self.ref(job)
        if ref is None:
            return f"job {job.id} is not a Slurm job"
        return (f"Slurm job {ref[1]} on cluster {ref[0]}: its output is where sbatch put it "
                f"(scontrol show job {ref[1]}: StdOut)")

    # -- discovery -----------------------------------------------------------------------------

    def _sibling_copy(self, cluster: str, rec: dict[str, Any]) -> bool:
        """A federated job's sibling on another cluster than its origin: the origin owns it."""
        origin = str(rec.get("federation_origin") or "")
        return self.settings.federation and bool(origin) and origin != cluster

    def _holder(self, origin: str, jid: int,
                queue: Callable[[str], dict[int, dict[str, Any]]],
                ) -> tuple[str, dict[str, Any] | None]:
        """The cluster that holds a job and its record there (None: not in any queue): the
        origin, or the configured cluster it moved to in the federation (the origin's record
        is then REVOKED and names it in `federation_siblings_active`)."""
        rec = queue(origin).get(jid)
        if (rec is None or not self.settings.federation
                or base_state(str(rec.get("job_state"))) != "REVOKED"):
            return origin, rec
        active = str(rec.get("federation_siblings_active") or "").split(",")
        to = next((c for c in active if c in self.clusters and c != origin), None)
        return (origin, rec) if to is None else (to, queue(to).get(jid))

    def _opted_in(self, rec: dict[str, Any]) -> bool:
        tag = parse_tag(rec.get("admin_comment"))
        if tag is not None:
            return True
        s = self.settings
        parts = str(rec.get("partition") or "").split(",")
        return bool((s.opt_in_qos and rec.get("qos") == s.opt_in_qos)
                    or set(parts) & set(s.opt_in_partitions)
                    or has_word(rec.get("comment"), s.opt_in_comment))

    def home_target(self, cluster: str, partitions: Sequence[str], gpu: tuple[str, str | None]
                    | None) -> Target | None:
        """The pool a job would use as submitted: its cluster, partition and GPU."""
        for part in partitions:
            for t in self.targets.values():
                if t.cluster != cluster or t.partition != part:
                    continue
                if gpu is None and t.mig is None or gpu == (t.accelerator, t.mig):
                    return t
        return None

    def translate(self, cluster: str, rec: dict[str, Any], *, now: datetime,
                  ) -> DiscoveredJob | None:
        """One squeue record -> a DiscoveredJob (None, with a log line, when it has no time)."""
        jid = int(rec["job_id"])
        ref = f"{cluster}:{jid}"
        limit_min = _epoch(rec.get("time_limit"))
        estimate_h = hours_estimate(rec.get("comment"))
        if not 0 < limit_min < NO_VAL and estimate_h is None:
            log.warning("slurm job %s opted in without a time limit: not planned", ref)
            return None
        limit_h = limit_min / 60.0 if 0 < limit_min < NO_VAL else None
        run_h = min(x for x in (estimate_h, limit_h) if x is not None)

        gres_type, gpus = self._gpus(rec)
        gpu = self.gres_to_gpu.get(gres_type) if gres_type else None
        if gres_type and gpu is None and gres_type in self.site.accelerators:
            gpu = (gres_type, None)
        if gpu is not None:
            gpu_types, mig = [gpu[0]], gpu[1]
            acc = self.site.accelerators.get(gpu[0])
            speed = acc.speed if acc else 1.0
            if mig and acc and mig in acc.mig_profiles:
                speed *= acc.mig_profiles[mig].slices / MIG_SLICES_PER_GPU
        else:
            # an unmapped GRES type stays as typed, so the feasibility check names it
            gpu_types, mig, speed = ([gres_type] if gres_type else []), None, 1.0
        partitions = [p for p in str(rec.get("partition") or "").split(",") if p]
        home = self.home_target(cluster, partitions, gpu) if gpu or not gres_type else None

        submit = _when(_epoch(rec.get("submit_time"))) or now
        deadline = _when(_epoch(rec.get("deadline")))
        if deadline is None:
            deadline = submit + timedelta(hours=limit_h or run_h) + self.slack
        tag = parse_tag(rec.get("admin_comment"))
        not_before = _when(tag.not_before or 0) if tag else None
        if not_before is not None and not_before >= deadline:
            not_before = None
        regions = [] if self.settings.federation else sorted(
            {t.region for t in self.targets.values() if t.cluster == cluster})
        user = str(rec.get("user_name") or rec.get("user_id") or "slurm")
        try:
            spec = JobSpec(
                name=str(rec.get("name") or f"slurm-{jid}")[:200], user=user[:100],
                project=str(rec.get("account") or rec.get("group_name") or user)[:100],
                script=str(rec.get("command") or "") or f"slurm:{ref}",
                gpus=max(gpus, 1), gpu_types=gpu_types, mig=mig, hours=run_h * speed,
                deadline=deadline, not_before=not_before, regions=regions,
                home_region=home.region if home else None,
                workdir=rec.get("current_working_directory") or None,
                source="slurm", external_id=ref)
        except ValidationError as exc:
            log.warning("slurm job %s cannot be planned: %s", ref, exc.errors()[0]["msg"])
            return None
        return DiscoveredJob(spec=spec, ref=ref, state=JobState.QUEUED,
                             pool=home.pool if home else None)

    @staticmethod
    def _gpus(rec: dict[str, Any]) -> tuple[str | None, int]:
        """GPU type and total count from tres_per_job (--gpus) or tres_per_node (--gres)."""
        per_job = parse_gpu_gres(str(rec.get("tres_per_job") or ""))
        if per_job is not None:
            return per_job
        per_node = parse_gpu_gres(str(rec.get("tres_per_node") or ""))
        if per_node is None:
            return None, 0
        nodes = _epoch(rec.get("node_count")) or 1
        return per_node[0], per_node[1] * (nodes if nodes < NO_VAL else 1)

    # -- apply ---------------------------------------------------------------------------------

    def ref(self, job: Job) -> tuple[str, int] | None:
        """(cluster, job id) of a Slurm job, from its executor ref or its external id."""
        text = job.executor_ref if job.executor == self.name and job.executor_ref else (
            job.external_id if job.source == "slurm" else None)
        if not text or ":" not in text:
            return None
        cluster, _, jid = text.rpartition(":")
        if cluster not in self.clusters or not jid.isdigit():
            return None
        return cluster, int(jid)

    def _queue(self, cluster: str) -> dict[int, dict[str, Any]]:
        return {int(r["job_id"]): r for r in self.clusters[cluster].jobs()}

    def _announce(self, action: Action) -> ActionResult:
        job, p = action.job, action.placement
        ref = self.ref(job)
        if ref is None:
            return ActionResult(ok=False, detail=f"job {job.id} has no Slurm job id on a "
                                "configured cluster")
        cluster, jid = ref
        where, rec = self._holder(cluster, jid, self._queue)
        if rec is None:
            return ActionResult(ok=False, detail=f"Slurm job {cluster}:{jid} is no longer "
                                "queued")
        state = base_state(str(rec.get("job_state", "")))
        if state != "PENDING":
            return ActionResult(ok=False, detail=f"Slurm job {cluster}:{jid} is {state}; "
                                "too late to move it")
        now = datetime.now(UTC)
        tag = parse_tag(rec.get("admin_comment")) or Tag("tagged", {"via": "carbonplan"})
        fields: list[str] = []
        notes: list[str] = []
        move: str | None = None  # the federation cluster the job goes to
        if p is None:  # not planned by carbonplan: runs as submitted
            start = max(now, _when(tag.not_before or 0) or now)
            new_tag = tag if tag.state == "released" else tag.evolve("released",
                                                                     at=_iso_utc(now))
            target = None
        else:
            target = self.targets.get(p.pool)
            if target is None:
                return ActionResult(ok=False, detail=f"pool {p.pool} names no Slurm cluster "
                                    "and partition (pool labels)")
            if target.cluster != where:
                if not self.settings.federation:
                    return ActionResult(ok=False, detail=f"pool {p.pool} is on cluster "
                                        f"{target.cluster} but the job was submitted to "
                                        f"{cluster} (no federation)",
                                        refused_pools=self._pools_on(target.cluster))
                stuck = self._one_way(cluster, rec, target)
                if stuck:
                    return ActionResult(ok=False, detail=f"Slurm job {cluster}:{jid} {stuck}",
                                        refused_pools=self._pools_on(cluster))
                move = target.cluster
            start = action.placement.start if action.kind == ActionKind.ANNOUNCE else now
            latest = self._latest_start(rec, job)
            if latest is not None and start > latest:
                notes.append(f"start moved up to the latest safe start {_iso_utc(latest)}")
                start = max(latest, now)
            new_tag = tag.evolve("planned", pool=p.pool,
                                 start=_iso_utc(start) if start > now else "asap",
                                 plan=str(action.plan_id) if action.plan_id is not None
                                 else "-")
        fields += self._start_field(rec, start, now)
        if target is not None:
            if str(rec.get("partition") or "") != target.partition:
                if target.cluster == cluster or target.partition in self._partitions(cluster):
                    fields.append(f"Partition={target.partition}")
                else:
                    notes.append(f"partition left to cluster {target.cluster} (the origin "
                                 f"{cluster} has no partition {target.partition}, and Slurm "
                                 "checks a federated job's partition there)")
            gres = self._gres_field(rec, target)
            if isinstance(gres, ActionResult):
                return gres
            fields += gres
        cli = self.clusters[cluster]
        if fields:  # at the origin, which passes them on to the cluster holding the job
            cli.update(jid, fields)
        held = _epoch(rec.get("priority")) == 0 and tag.mode == "closed"
        released = False
        if move is not None:
            if held:  # Slurm makes no sibling of a held job
                cli.release(jid)
                held, released = False, True
            if not self._move(cluster, jid, move):
                return self._not_moved(cluster, jid, move, where, fields)
            fields.append(f"Clusters={move}")
        changed = [f.split("=", 1)[0] for f in fields]
        # The decision goes into the admin comment in a call of its own: Slurm lets an Operator
        # move jobs but only an Admin (or root, SlurmUser) set AdminComment, and it rejects a
        # whole update that has one field it refuses.
        comment = with_tag(rec.get("admin_comment"), new_tag)
        if comment != (rec.get("admin_comment") or ""):
            try:
                cli.update(jid, [f"AdminComment={comment}"])
                changed.append("AdminComment")
            except SlurmError as exc:
                if exc.retryable or "permission denied" not in str(exc).lower():
                    raise
                notes.append("decision not recorded in the admin comment (that needs "
                             "AdminLevel=Admin)")
        if held:
            cli.release(jid)
            released = True
        if released:
            changed.append("released")
        if not changed:
            return ActionResult(ok=True, ref=f"{cluster}:{jid}",
                                detail="; ".join(["unchanged", *notes]))
        return ActionResult(ok=True, ref=f"{cluster}:{jid}",
                            detail="; ".join([f"updated {', '.join(changed)}", *notes]))

    def _not_moved(self, origin: str, jid: int, to: str, was: str,
                   fields: list[str]) -> ActionResult:
        """The move did not take: give the job back to the cluster it was on (a REVOKED job no
        cluster holds never runs), and say so."""
        try:
            self.clusters[origin].update(jid, [f"Clusters={was}"])
            back = f"left on {was}"
        except SlurmError as exc:
            back = f"and could not be given back to {was}: {exc}"
        return ActionResult(ok=False, retryable=True, detail=(
            f"Slurm job {origin}:{jid}: cluster {to} has not taken it (asked {MOVE_TRIES} "
            f"times); {back}; {', '.join(fields) or 'nothing else'} changed"))

    def _move(self, origin: str, jid: int, to: str) -> bool:
        """Move a federated job to cluster `to`; True once `to` holds it pending or running.

        `Clusters=` goes in a call of its own, after the GRES: Slurm makes the new sibling from
        the job as it is then, and in one call with other fields it revokes the job before it
        changes them. Right after submission the origin may still take the sibling it sent at
        submit (which failed where the GRES did not exist) for alive, and the move ends with no
        cluster holding the job; asking again then works (both measured on 22.05)."""
        for _ in range(MOVE_TRIES):
            self.clusters[origin].update(jid, [f"Clusters={to}"])
            deadline = time.monotonic() + MOVE_WAIT_S
            while True:
                rec = self._queue(to).get(jid)
                if rec is not None and base_state(str(rec.get("job_state"))) in (
                        PENDING_STATES | RUNNING_STATES):
                    return True
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        return False

    def _pools_on(self, cluster: str) -> tuple[str, ...]:
        return tuple(sorted(name for name, t in self.targets.items() if t.cluster == cluster))

    def _partitions(self, cluster: str) -> set[str]:
        return {t.partition for t in self.targets.values() if t.cluster == cluster}

    def _one_way(self, origin: str, rec: dict[str, Any], target: Target) -> str:
        """Why a job may not go back to its origin cluster ('' when it may).

        Once the origin accepted a GRES type it has no GPUs of (the type of the cluster the job
        moved to), Slurm 22.05 keeps the job never runnable there (BadConstraints), even with
        the GRES set back: measured on the test federation."""
        if target.cluster != origin:
            return ""
        asked = parse_gpu_gres(str(rec.get("tres_per_node") or ""))
        kinds = {t.gres for t in self.targets.values() if t.cluster == origin and t.gres}
        if asked is None or asked[0] is None or asked[0] in kinds:
            return ""
        return (f"asks for gpu:{asked[0]} since it left {origin}, which has no such GPUs; "
                f"Slurm would keep it never runnable there, so it stays where it is")

    def _latest_start(self, rec: dict[str, Any], job: Job) -> datetime | None:
        """deadline - time limit - margin: Slurm cancels a job that cannot end by --deadline."""
        limit = _epoch(rec.get("time_limit"))
        if not 0 < limit < NO_VAL:
            return None
        deadlines = [d for d in (_when(_epoch(rec.get("deadline"))), job.deadline) if d]
        return min(deadlines) - timedelta(minutes=limit) - self.margin

    @staticmethod
    def _start_field(rec: dict[str, Any], start: datetime, now: datetime) -> list[str]:
        begin = _epoch(rec.get("eligible_time"))
        want = int(start.timestamp())
        if want <= int(now.timestamp()) and 0 < begin <= int(now.timestamp()):
            return []  # both "now": already eligible
        if begin == want:
            return []
        return [f"StartTime={slurm_time(start)}"]

    @staticmethod
    def _gres_field(rec: dict[str, Any], target: Target) -> list[str] | ActionResult:
        """Gres= when the pool's GPU type differs from the job's request (a MIG size...)."""
        per_node = parse_gpu_gres(str(rec.get("tres_per_node") or ""))
        if per_node is None or target.gres is None or per_node[0] == target.gres:
            if per_node is None and parse_gpu_gres(str(rec.get("tres_per_job") or "")):
                typ = parse_gpu_gres(str(rec.get("tres_per_job")))[0]  # type: ignore[index]
                if target.gres is not None and typ != target.gres:
                    return ActionResult(ok=False, detail=f"the job asked --gpus={typ}; "
                                        f"moving it to {target.gres} needs --gres")
            return []
        return [f"Gres=gpu:{target.gres}:{per_node[1]}"]

    def _cancel(self, job: Job) -> ActionResult:
        ref = self.ref(job)
        if ref is None:
            return ActionResult(ok=True, detail="not a Slurm job")
        try:
            self.clusters[ref[0]].cancel(ref[1])
        except SlurmError as exc:
            if "Invalid job id" in str(exc) or "already completing or completed" in str(exc):
                return ActionResult(ok=True, detail="already finished")
            raise
        return ActionResult(ok=True, ref=f"{ref[0]}:{ref[1]}", detail="scancel sent")

    # -- poll ----------------------------------------------------------------------------------

    def _requeued(self, job: Job, cluster: str, jid: int, rec: dict[str, Any],
                  seen: dict[tuple[str, int], int]) -> bool:
        """Whether a requeue may have ended a run since the last poll: the job went back to
        pending, runs again from a later start, or Slurm counts more restarts than when last
        seen (each daemon asks once after it starts; a requeue it saw is not counted twice,
        see `_interrupted`)."""
        restarts = _epoch(rec.get("restart_cnt"))
        self._restarts[(cluster, jid)] = restarts
        if restarts > seen.get((cluster, jid), 0):
            return True
        if job.state != JobState.RUNNING:
            return False
        state = base_state(str(rec.get("job_state", "")))
        if state in PENDING_STATES:
            return True
        started = _when(_epoch(rec.get("start_time")))
        return (job.started_at is not None and started is not None
                and started > job.started_at)

    def _interrupted(self, job: Job, cluster: str, records: Sequence[Finished],
                     current: datetime | None) -> tuple[list[JobUpdate], Job]:
        """The runs a requeue ended that carbonplan has not closed yet, as updates (started,
        then back in the queue with the run's end as Slurm recorded it), and the job as they
        leave it. A run it closed ended before the job's last change; the run it saw running
        is the one that starts at its `started_at` (squeue, sacct and jobcomp all give
        slurmctld's start to the second, so a run is known by its start)."""
        if job.state == JobState.RUNNING and job.started_at is not None:
            since = job.started_at
        else:
            since = job.updated_at
        out: list[JobUpdate] = []
        for r in records:
            # a requeue ends only a run that started, however short (Slurm's times are whole
            # seconds: a run requeued within its first second starts and ends at once)
            if (r.started_at is None or r.ended_at is None or r.started_at > r.ended_at
                    or r.started_at < since
                    or r.started_at == current):
                continue
            extra = {"cluster": cluster, "partition": r.partition, "slurm_state": r.state,
                     "pool": (self._pool_of(job, cluster, r.partition, "") if r.partition
                              else "") or job.ran_pool or ""}
            if job.state != JobState.RUNNING or job.started_at != r.started_at:
                out.append(JobUpdate(job.id, JobState.RUNNING, reason=f"ran in {r.partition}",
                                     started_at=r.started_at, extra=extra))
            why = "" if r.state in PENDING_STATES else f" ({r.state})"
            out.append(JobUpdate(job.id, JobState.QUEUED, reason=f"requeued by Slurm{why}",
                                 started_at=r.started_at, ended_at=r.ended_at, extra=extra))
            job = job.model_copy(update={"state": JobState.QUEUED, "started_at": None})
        return out, job

    def _pool_of(self, job: Job, cluster: str, partition: str, tres: str) -> str:
        """The pool a job ran in: its partition and its GPU (as Slurm says, else as asked)."""
        gres = parse_gpu_gres(tres)
        gpu = self.gres_to_gpu.get(gres[0]) if gres and gres[0] else None
        if gpu is None and job.gpu_types:
            gpu = (job.gpu_types[0], job.mig)
        t = self.home_target(cluster, [partition], gpu)
        return t.pool if t else ""

    def _updates_live(self, job: Job, cluster: str, rec: dict[str, Any]) -> list[JobUpdate]:
        state = base_state(str(rec.get("job_state", "")))
        partition = str(rec.get("partition") or "")
        extra = {"cluster": cluster, "partition": partition, "slurm_state": state,
                 "pool": self._pool_of(job, cluster, partition,
                                       str(rec.get("tres_per_node") or ""))}
        started = _when(_epoch(rec.get("start_time")))
        if state in PENDING_STATES:
            if job.state == JobState.RUNNING:
                return [JobUpdate(job.id, JobState.QUEUED, reason=f"requeued by Slurm ({state})",
                                  extra=extra)]
            return []
        if state in RUNNING_STATES:
            if job.state == JobState.RUNNING:
                return []
            return [JobUpdate(job.id, JobState.RUNNING, reason=f"running in {partition} on "
                              f"{rec.get('nodes') or cluster}", started_at=started, extra=extra)]
        final = FINAL_STATES.get(state)
        if final is None:
            return []
        code = wait_status_exit_code(_epoch(rec.get("exit_code")))
        return self._final(job, final, state, started, _when(_epoch(rec.get("end_time"))),
                           code, extra)

    def _updates_done(self, job: Job, cluster: str, f: Finished) -> list[JobUpdate]:
        final = FINAL_STATES.get(f.state)
        if final is None:
            return []
        # slurmdbd fills a finished job's partition in a few seconds after its end (measured
        # on 22.05: about 4 s); until then the pool it ran in is the one it was seen in
        pool = self._pool_of(job, cluster, f.partition, "") if f.partition else ""
        extra = {"cluster": cluster, "partition": f.partition, "slurm_state": f.state,
                 "pool": pool or job.ran_pool or ""}
        return self._final(job, final, f.state, f.started_at, f.ended_at, f.exit_code, extra)

    @staticmethod
    def _final(job: Job, final: JobState, state: str, started: datetime | None,
               ended: datetime | None, code: int | None, extra: dict[str, str],
               ) -> list[JobUpdate]:
        out = []
        if final in (JobState.CANCELLED, JobState.MISSED_DEADLINE) and (
                started is None or ended is None or started >= ended):
            started, code = None, None  # never ran: Slurm stamps start = end
        if started is not None and job.state in (JobState.QUEUED, JobState.PLANNED,
                                                 JobState.SUBMITTED):
            out.append(JobUpdate(job.id, JobState.RUNNING, reason=f"ran in {extra['partition']}",
                                 started_at=started, extra=extra))
        reason = f"Slurm {state}" + (f", exit code {code}" if code is not None else "")
        out.append(JobUpdate(job.id, final, reason=reason, started_at=started, ended_at=ended,
                             exit_code=code, extra=extra))
        return out
