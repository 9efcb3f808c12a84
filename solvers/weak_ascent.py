"""What the resumed ascent buys when the first ascent falls short.

    python -m solvers.weak_ascent --size 10000x24x168 --seed 2 --bound-share 0.15 \
        --resume-share 0.0 0.6

The continuation ascent that bounds large instances is time-sliced, so how far it gets varies
from run to run. Cutting its share of the time (`PlanOptions.bound_share`) makes a short one
reproducible; each `--resume-share` is one plan with that `PlanOptions.bound_more_share`
(0 turns the resumed ascent off). Prints gap, objective, bound and phase times per plan.
"""

from __future__ import annotations

import argparse
import time

from carbonplan.planner.solve import PlanOptions, plan
from solvers.generator import synthetic_instance
from solvers.harness import parse_size


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, default=(10_000, 24, 168))
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--gap", type=float, default=0.02)
    ap.add_argument("--bound-share", type=float, default=0.15)
    ap.add_argument("--resume-share", type=float, nargs="+", default=[0.0, 0.6])
    args = ap.parse_args(argv)
    jobs, pools, slots = args.size
    for share in args.resume_share:
        inst = synthetic_instance(jobs, pools, slots, seed=args.seed)
        t0 = time.perf_counter()
        res = plan(inst, time_limit=args.time_limit, rel_gap=args.gap,
                   options=PlanOptions(bound_share=args.bound_share, bound_more_share=share))
        r = res.result
        phases = ", ".join(f"{k} {v:.1f}" for k, v in res.timings.items())
        print(f"resume share {share}: gap {r.gap:.2%}, objective {r.objective:,.1f}, bound "
              f"{r.bound:,.1f}, {time.perf_counter() - t0:.1f} s ({phases})", flush=True)


if __name__ == "__main__":
    main()
