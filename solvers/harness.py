"""Benchmark harness: every policy and every backend on the same instances, one table.

    python -m solvers.harness --size 1000x12x72 --seeds 1 2 3 --time-limit 10 --gap 0.01
    python -m solvers.harness --size 10000x24x168 --seeds 1 --time-limit 120 --gap 0.02 \
        --backends highs --data-dir ../shared/data --out docs/bench-10k.md

Each plan runs in its own process (so its peak memory is its own); policies run in the parent.
Columns: objective ($ + carbon price x tCO2e + penalties), tCO2e, $, unplanned (deadline misses),
solve seconds, gap to the plan's certified bound, peak RSS, load average at the start of the run.
With `--data-dir` pointing at the shared traces the instances come from them (see generator.py),
otherwise they are synthetic.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `solvers` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from carbonplan.planner.evaluate import evaluate
from carbonplan.planner.policies import POLICIES, get_policy
from solvers.generator import describe, make_instance


@dataclass
class Row:
    """One line of the results table."""

    instance: str
    method: str
    objective: float
    t_co2e: float
    usd: float
    unplanned: int
    seconds: float
    gap_to_bound: float
    bound: float = float("nan")
    termination: str = ""
    peak_rss_mib: float = float("nan")
    load: str = ""
    extra: dict = field(default_factory=dict)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_avg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _plan_child(spec: dict, queue: mp.Queue) -> None:
    from carbonplan.planner.solve import plan

    inst = make_instance(spec["jobs"], spec["pools"], spec["slots"], seed=spec["seed"],
                         data_dir=spec["data_dir"])
    t = time.perf_counter()
    res = plan(inst, backend=spec["backend"], time_limit=spec["time_limit"],
               rel_gap=spec["gap"])
    seconds = time.perf_counter() - t
    ev = res.evaluation
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    queue.put(dict(objective=ev.objective, t_co2e=ev.t_co2e, usd=ev.cost_usd,
                   unplanned=ev.n_unplanned + ev.n_late, seconds=seconds,
                   bound=res.result.bound, gap=res.result.gap,
                   termination=res.result.termination.value, rss=rss,
                   feasible=ev.feasible, lp=res.lp_objective,
                   timings={k: round(v, 2) for k, v in res.timings.items()},
                   message=res.result.message))


def run_plan(spec: dict) -> dict:
    """Plan one instance in a child process; returns its figures."""
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_plan_child, args=(spec, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def run(sizes: list[tuple[int, int, int]], seeds: list[int], *, backends: list[str],
        policies: list[str], time_limit: float, gap: float, data_dir: str | None,
        log: object = sys.stderr) -> list[Row]:
    """Every backend and policy on every (size, seed); returns the rows."""
    rows: list[Row] = []
    for jobs, pools, slots in sizes:
        for seed in seeds:
            inst = make_instance(jobs, pools, slots, seed=seed, data_dir=data_dir)
            name = f"{jobs}x{pools}x{slots}/s{seed}"
            print(f"[{name}] {describe(inst)}", file=log, flush=True)
            bound = float("nan")
            for backend in backends:
                spec = dict(jobs=jobs, pools=pools, slots=slots, seed=seed, data_dir=data_dir,
                            backend=backend, time_limit=time_limit, gap=gap)
                load = load_avg()
                out = run_plan(spec)
                bound = out["bound"] if bound != bound else max(bound, out["bound"])
                rows.append(Row(name, f"plan[{backend}]", out["objective"], out["t_co2e"],
                                out["usd"], out["unplanned"], out["seconds"], out["gap"],
                                out["bound"], out["termination"], out["rss"], load,
                                {"lp": out["lp"], "timings": out["timings"],
                                 "feasible": out["feasible"], "message": out["message"]}))
                print(f"  plan[{backend}] {out['objective']:.1f} gap {out['gap']:.3%} "
                      f"{out['seconds']:.1f}s {out['termination']} load {load}", file=log,
                      flush=True)
            for pol in policies:
                load = load_avg()
                t = time.perf_counter()
                sched = get_policy(pol)(inst)
                seconds = time.perf_counter() - t
                ev = evaluate(inst, sched)
                g = (ev.objective - bound) / ev.objective if ev.objective else float("nan")
                rows.append(Row(name, pol, ev.objective, ev.t_co2e, ev.cost_usd,
                                ev.n_unplanned + ev.n_late, seconds, g, bound, "", float("nan"),
                                load, {"feasible": ev.feasible}))
                print(f"  {pol} {ev.objective:.1f} gap {g:.2%} {seconds:.1f}s", file=log,
                      flush=True)
    return rows


def to_markdown(rows: list[Row]) -> str:
    """The rows as a markdown table."""
    head = ("| instance | method | objective $ | tCO2e | cost $ | unplanned | seconds "
            "| gap to bound | termination | peak RSS MiB | load (1/5/15 min) |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        rss = "" if r.peak_rss_mib != r.peak_rss_mib else f"{r.peak_rss_mib:.0f}"
        lines.append(f"| {r.instance} | {r.method} | {r.objective:,.1f} | {r.t_co2e:.3f} | "
                     f"{r.usd:,.1f} | {r.unplanned} | {r.seconds:.2f} | {r.gap_to_bound:.2%} | "
                     f"{r.termination} | {rss} | {r.load} |")
    return "\n".join(lines) + "\n"


def parse_size(text: str) -> tuple[int, int, int]:
    try:
        jobs, pools, slots = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected JOBSxPOOLSxSLOTS") from None
    return jobs, pools, slots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, action="append", default=None,
                    help="JOBSxPOOLSxSLOTS (repeatable); default 1000x12x72")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--backends", nargs="+", default=["highs"],
                    help="integer-master backends (highs, pulp, pyomo, pulp:SOLVER, ...)")
    ap.add_argument("--policies", nargs="+", default=["all"])
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--gap", type=float, default=0.01)
    ap.add_argument("--data-dir", default=None, help="the shared traces (synthetic if absent)")
    ap.add_argument("--out", default=None, help="write the markdown table here")
    ap.add_argument("--json", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    policies = POLICIES.names() if args.policies == ["all"] else args.policies
    rows = run(args.size or [(1000, 12, 72)], args.seeds, backends=args.backends,
               policies=policies, time_limit=args.time_limit, gap=args.gap,
               data_dir=args.data_dir)
    header = (f"machine: {os.cpu_count()} cores, {cpu_model()}; python {platform.python_version()}"
              f"\ncommand: python -m solvers.harness {' '.join(argv or sys.argv[1:])}\n\n")
    table = header + to_markdown(rows)
    if args.out:
        Path(args.out).write_text(table)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
