"""The planner's entry point: `plan(instance) -> PlanResult` (schedule, evaluation, bound, gap).

Pipeline (docs/model.md gives the formulation and the bound):

1. prepare: cost coefficients, windows (spot safety), frozen jobs, residual capacities.
2. incumbents: the greedy spatio-temporal plan and the warm start (previous plan), if any.
3. bound: Lagrangian ascent on pricing alone, from zero duals or the previous plan's duals.
4. columns: column generation on the LP master (highspy, `addCols` in place), smoothed towards
   the ascent's duals; the Lagrangian bound is valid at every iteration.
5. primal: a greedy priced at the best duals (largest jobs first; unplaced jobs moved to the front
   and re-run), single-job moves, every unit job (1 GPU, one MIG slice) re-placed at once from the
   rounded LP of their sub-master (unit_repack.py), compiled relocation and ejection moves
   (local_search.py, up to 1,000 jobs), then a large-neighbourhood search that
   re-solves small integer masters through the chosen backend, with a unit repack again after
   each stretch of it, until the certified gap (objective - bound) / objective reaches
   `rel_gap`.
   When the gap after the first primal steps is still several times the target, the bound is
   what is missing: large jobs that cannot share a pool are packed as integers inside the
   Lagrangian (packing_bound.py), with column generation on that bound in LP mode.
6. completion (small instances): every column whose reduced cost is within the gap is added and
   the integer master is solved exactly; an optimal answer then proves optimality.

The result's `bound` is always valid for the full problem, not only for the generated columns:
the Lagrangian bound, the restricted master's or the packing bound where they are higher, or the
objective itself when step 6 proved optimality.

Never prints; reports through the optional `progress` callback. Must not import domain models,
the store, signals or config.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from carbonplan.planner.backends import Backend, get_backend
from carbonplan.planner.bound import ascend
from carbonplan.planner.cg import CGResult, add_priced_columns, best_pairs, column_generation
from carbonplan.planner.columns import ColumnSet, Schedule, contiguous_slots
from carbonplan.planner.continuation import ascend_by_continuation
from carbonplan.planner.duals import Duals
from carbonplan.planner.evaluate import Evaluation, evaluate
from carbonplan.planner.greedy import Residual, place_dense, run_columns, size_order
from carbonplan.planner.lns import LNS, Incumbent, LNSStats, column_reduced_costs
from carbonplan.planner.packing_bound import packing_bound, packing_column_generation
from carbonplan.planner.pausable_enum import TooMany, pausable_columns_under
from carbonplan.planner.policies import greedy_schedule
from carbonplan.planner.polish import shift_earlier
from carbonplan.planner.prepare import Prepared, frozen_schedule, prepare
from carbonplan.planner.pricing import Pricer, PricingResult
from carbonplan.planner.restricted_bound import (
    restricted_bound,
    restricted_plan,
    solve_over,
    within_gap,
)
from carbonplan.planner.result import SolveResult, Termination, relative_gap
from carbonplan.planner.unit_repack import repack_unit_jobs, unit_jobs


@dataclass
class PlanOptions:
    """Tuning knobs of the pipeline (defaults suit 10^2 - 10^4 jobs on 2 cores)."""

    lp_max_jobs: int = 1000         # column generation on the LP master up to this many jobs;
                                    # beyond, the bound comes from the pricing-only ascent
    bound_share: float = 0.55       # time share of the ascent when it provides the bound
    bound_more_share: float = 0.6   # share of the time left after the primal steps that the
                                    # ascent resumes when the gap is still open (ascent mode)
    bound_more_stall: tuple[int, float] = (25, 0.02)  # ... until 25 iterations gain < 2% of
                                    # the gap left (then the search gets the time)
    tie_break: bool = True          # that ascent, and its resumption, by continuation on
                                    # tie-broken costs (continuation.py); False: the plain ascent
    ascent_iters: int = 0           # ascent iterations before column generation (LP mode)
    ascent_share: float = 0.15      # at most this share of the time limit for that ascent
    cg_share: float = 0.55          # at most this share (cumulative) until CG stops
    cg_grace: float = 0.1           # share of the time limit that an LP started before then
                                    # may run beyond it to finish; one that would not (by the
                                    # last LP's time) is not started (1,000 x 12 x 72 at 10 s:
                                    # the seventh LP, cut off at 5.5 s on a slower day, adds
                                    # 0.16% to the bound; mean gap 1.21% -> 1.14%)
    cg_tol: float = 0.1             # CG stops at (z_LP - bound) <= cg_tol * rel_gap * z_LP
    # search settings; None = by time budget: short plans (< 30 s) use many small neighbourhoods,
    # long ones fewer, larger, exactly solved ones (measured on 1,000 x 12 x 72, docs/benchmarks.md)
    top_k: int | None = None        # contiguous candidates per job: 10 | 20
    lns_jobs: int | None = None     # jobs freed per neighbourhood: 30 | 60
    lns_window: int | None = None   # slots per neighbourhood window: 12 | 8
    lns_sub_time: float | None = None  # time limit of one sub-MIP (s): 0.15 | 0.5
    lns_sub_gap: float | None = None   # relative gap of one sub-MIP: 0.005 | 1e-4
    completion_columns: int = 20000  # enumerate all columns within the gap up to this many
    completion_max_jobs: int = 2000  # try the completion only up to this many jobs
    completion_share: float = 0.25  # time share of the first completion attempt
    packing_share: float = 0.35     # at most this share of the time limit for the bound of
                                    # large jobs packed as integers (packing_bound.py) ...
    packing_from: float = 4.0       # ... tried when the gap after the primal steps exceeds
                                    # this many times rel_gap (synthetic 1,000 x 12 x 72:
                                    # 2.4x, where it lifts the bound by ~$1 for 0.4-0.7 s;
                                    # trace instances: 5.5-9x, lifted by up to 6%)
    restricted_max_jobs: int = 200  # restricted integer master (plan and bound) up to this many
    restricted_columns: int = 60000  # ... and this many columns within the gap
    restricted_share: float = 0.25  # time share of each of its two solves
    pausable_enum_window: int = 12  # exhaustive pausable enumeration up to this window (slots);
                                    # wider ones by a search pruned at the gap (pausable_enum)
    repack_rounds: int = 3          # unit-job LP repacks before the search (unit_repack.py),
                                    # repeated while one saves more than 0.1%
    repack_share: float = 0.15      # at most this share of the time limit for one repack's LP
    repack_max_jobs: int = 3000     # ... and only up to this many unit jobs (5,010 on the
                                    # daemon's 10,000-job instance: 17.6 s of LP, nothing saved)
    repack_repair_share: float = 0.03  # compiled moves from a rounded repack that is not
                                    # cheaper, for this share of the time limit (its rounding
                                    # kept $0-111 of a $84-131 promise; 1,000 x 12 x 72 at
                                    # 10 s, seeds 2-3: mean gap 1.17% -> 1.14%); 0: off
    repack_every: float = 0.2       # a repack again after each such share of the time limit
                                    # spent searching (the search's moves of larger jobs
                                    # leave holes a repack fills: 1,000 x 12 x 72 at 10 s,
                                    # mean gap 1.87% -> 1.72%, docs/benchmarks.md); 0: off
    workers: int = 2                # sub-MIPs solved at once by the search (threads, HiGHS
                                    # only; capped by the cores): on 1,000 x 12 x 72 at low load
                                    # 2 lowered the 10-s gap by ~0.2 points (docs/benchmarks.md)
    local_search_share: float = 0.3  # compiled relocation and ejection moves (local_search.py)
                                    # for this share of the time limit before the sub-MIPs
                                    # (1,000 x 12 x 72 at 10 s: mean gap 1.66% -> 1.33%,
                                    # docs/benchmarks.md); 0: off
    local_search_max_jobs: int = 3000  # ... up to this many free jobs (measured range)
    local_search_workers: int = 2   # chains at once, on the two sides of a moving boundary slot
                                    # (capped by the cores; 1,000 x 12 x 72 at 10 s: mean
                                    # gap 1.18% -> 1.08%, docs/benchmarks.md)
    background_moves: bool = True   # the local search also on a second core while column
                                    # generation runs, from the greedy plan at its duals once the
                                    # LP is within `background_lp_gap` of the bound
    background_lp_gap: float = 0.005
    lp_tail: bool = True            # column generation's next LP on the second core, for the
                                    # bound, while the primal steps run (lp_tail.py)
    seed: int = 0


@dataclass
class Progress:
    """One progress report."""

    phase: str          # prepare | bound | columns | primal | search | completion | done
    elapsed_s: float
    objective: float
    bound: float
    message: str = ""

    @property
    def gap(self) -> float:
        return relative_gap(self.objective, self.bound)


@dataclass
class PlanResult:
    """A plan with its certificate."""

    schedule: Schedule           # every job's placement (frozen jobs included)
    evaluation: Evaluation       # scores by the common evaluator
    result: SolveResult          # termination, objective, bound, gap, iterations, columns, s
    duals: Duals                 # best duals (warm start for the next re-plan)
    lp_objective: float          # last LP master objective
    timings: dict[str, float] = field(default_factory=dict)
    lns: LNSStats | None = None


def plan(inst: object, *, backend: str | Backend = "highs", time_limit: float = 60.0,
         rel_gap: float = 0.01, warm_start: Schedule | None = None,
         duals: Duals | None = None, options: PlanOptions | None = None,
         progress: Callable[[Progress], None] | None = None) -> PlanResult:
    """Plan every free job of `inst` (see the module docstring).

    Args:
        inst: the `Instance`.
        backend: integer-master backend (name for `get_backend`, or an instance).
        time_limit: seconds for the whole plan (the last sub-solve may overrun slightly).
        rel_gap: stop once (objective - bound) / objective <= rel_gap.
        warm_start: a previous schedule (placements that are still valid and fit are kept).
        duals: duals of a previous plan, to start the bound from.
        options: pipeline knobs.
        progress: called with a `Progress` at each phase and periodically while searching.

    Returns:
        The plan, its evaluation and its certificate.
    """
    t0 = time.perf_counter()
    opt = _resolved(options or PlanOptions(), time_limit)
    be = get_backend(backend) if isinstance(backend, str) else backend
    timings: dict[str, float] = {}
    state = {"objective": np.inf, "bound": -np.inf}

    def elapsed() -> float:
        return time.perf_counter() - t0

    def report(phase: str, message: str = "") -> None:
        if progress is not None:
            progress(Progress(phase=phase, elapsed_s=elapsed(), objective=state["objective"],
                              bound=state["bound"], message=message))

    def mark(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - since
        return now

    tick = time.perf_counter()
    prep = prepare(inst)
    pricer = Pricer(prep)
    tick = mark("prepare", tick)
    report("prepare", f"{int(prep.free.sum())} jobs to plan")
    cols = ColumnSet.empty()
    if not prep.free.any():
        sched = frozen_schedule(prep.inst)
        ev = evaluate(prep.inst, sched, prep.cc)
        res = SolveResult(Termination.OPTIMAL, objective=ev.objective, bound=ev.objective,
                          seconds=elapsed(), solution=sched)
        return PlanResult(sched, ev, res, duals or Duals.zeros(prep.inst.n_pools, len(
            prep.inst.site_names), prep.inst.n_slots), ev.objective, timings)

    # -- incumbents: greedy policy, dual-priced greedy at zero prices, warm start ----------------
    y0 = duals.projected() if duals is not None else Duals.zeros(
        prep.inst.n_pools, len(prep.inst.site_names), prep.inst.n_slots)
    first_come = greedy_schedule(prep, pricer)  # also the ascent's tie-breaker (continuation)
    starts = [adopt(prep, cols, first_come)]
    if warm_start is not None:
        starts.insert(0, adopt(prep, cols, warm_start))
    starts += dual_greedy(prep, pricer, cols, y0, rounds=2)
    best = None
    for chosen in starts:
        inc = Incumbent(prep, cols, chosen)
        if best is None or inc.objective < best.objective - 1e-9:
            best = inc
    state["objective"] = best.objective
    tick = mark("incumbent", tick)
    report("primal", "greedy plan")

    # -- bound: column generation (LP master), or pricing-only ascent for large instances ------
    n_free = int(prep.free.sum())
    use_lp = n_free <= opt.lp_max_jobs
    res0 = pricer.price(y0)
    y_start, bound = res0.duals, res0.lagrangian

    def on_ascent(it: int, value: float, best_bound: float) -> None:
        state["bound"] = max(state["bound"], best_bound)
        if it % 10 == 0:
            report("bound", f"Lagrangian ascent {it}")

    if not use_lp or opt.ascent_iters > 0:
        share = opt.ascent_share if use_lp else opt.bound_share
        iters = opt.ascent_iters if use_lp else 10_000
        if use_lp or not opt.tie_break:
            asc = ascend(pricer, y0, best.objective, max_iter=iters,
                         time_limit=max(share * time_limit - elapsed(), 0.0),
                         tol=opt.cg_tol * rel_gap, alpha=0.3, on_iteration=on_ascent)
        else:  # the bound of a large instance: continuation on tie-broken costs
            asc = ascend_by_continuation(pricer, y0, best.objective, first_come,
                                         time_limit=max(share * time_limit - elapsed(), 0.0),
                                         tol=opt.cg_tol * rel_gap, on_iteration=on_ascent)
        if asc.bound > bound:
            y_start, bound, res0 = asc.duals, asc.bound, asc.pricing
    state["bound"] = bound
    tick = mark("ascent", tick)
    cg = CGResult(duals=y_start, bound=bound, lp_objective=np.inf, lp=None, pricing=res0)
    if use_lp:
        jobs0, pools0 = best_pairs(res0, 2)
        initial = add_priced_columns(pricer, res0, cols, jobs0, pools0)
        initial = np.union1d(initial, np.concatenate([c[c >= 0] for c in starts]))

        lp_z = [np.inf]

        def on_cg(it: int, value: float, z: float) -> None:
            state["bound"] = max(state["bound"], value)
            lp_z[0] = z
            report("columns", f"iteration {it}: LP {z:.2f}")

        moving: list = []  # the local search on the second core, once the duals are worth it

        def on_duals(it: int, y: Duals) -> None:
            lp_gap = relative_gap(lp_z[0], state["bound"])
            if not moving and lp_gap <= opt.background_lp_gap and background_ready(opt, n_free):
                from carbonplan.planner import local_search

                moving.append(local_search.Background(
                    prep, pricer, y, time_limit=max(time_limit - elapsed(), 0.0),
                    seed=opt.seed))

        cg_time = max(opt.cg_share * time_limit - elapsed(), 0.0)
        cg = column_generation(prep, pricer, cols, initial, y_start, bound, time_limit=cg_time,
                               grace=opt.cg_grace * time_limit,
                               tol=max(opt.cg_tol * rel_gap, 1e-6), smoothing=0.0,
                               on_iteration=on_cg, on_duals=on_duals)
        if moving:
            best, moves = adopt_background(prep, cols, best, moving[0])
            state["objective"] = best.objective
            report("primal", f"local search beside column generation: {moves} moves tried")
    if cg.bound >= bound and cg.pricing is not None:
        bound, y_best, pricing = cg.bound, cg.duals, cg.pricing
    else:
        y_best, pricing = y_start, res0
    state["bound"] = bound
    tick = mark("column_generation", tick)
    # time kept to turn the plan into a schedule and evaluate it (~0.15 s at 1,000 jobs)
    reserve = min(0.02 * time_limit, 0.5)
    tail = None
    if (opt.lp_tail and cg.live is not None and cores() >= 2
            and relative_gap(best.objective, bound) > rel_gap):
        from carbonplan.planner.lp_tail import LPTail

        tail = LPTail(pricer, cg.live, cg.method, until=t0 + time_limit - reserve)

    def lifted(current: float, wait: float = 0.0) -> float:
        """`current`, or the next LP's bound once it is there and higher."""
        got = tail.bound(wait) if tail is not None else None
        if got is not None and got > current:
            state["bound"] = got
            report("bound", "column generation's next LP")
            return got
        return current

    # -- primal: dual-priced greedy, candidates, 1-opt, search -----------------------------------
    best = greedy_at(prep, pricer, cols, y_best, best)
    state["objective"] = best.objective
    if (use_lp and relative_gap(best.objective, bound) > rel_gap
            and n_free <= opt.restricted_max_jobs):
        # small instances: the integer master restricted by reduced cost, for a better plan and
        # a bound beyond the LP (restricted_bound.py)
        gap = within_gap(prep, pricer, cols, best.objective, y_best, pricing,
                         max_columns=opt.restricted_columns)
        if gap is not None:
            exact, pj, pp, delta = gap
            if restricted_plan(prep, cols, best, exact,
                               time_limit=min(opt.restricted_share * time_limit,
                                              max(time_limit - elapsed(), 0.0))):
                state["objective"] = best.objective
            rb = restricted_bound(prep, cols, best.objective, exact, pj, pp, delta,
                                  time_limit=min(opt.restricted_share * time_limit,
                                                 max(time_limit - elapsed(), 0.0)),
                                  max_columns=opt.restricted_columns)
            if rb > bound:
                bound = state["bound"] = rb
            report("bound", "restricted integer master")
        tick = mark("restricted", tick)
    lns = search_at(prep, pricer, cols, y_best, pricing, cg, best, be, opt,
                    time_limit=max(time_limit - elapsed(), 0.0))
    state["objective"] = best.objective
    tick = mark("primal", tick)
    report("primal", "dual-priced greedy and single-job moves")
    if (relative_gap(best.objective, bound) > opt.packing_from * rel_gap
            and n_free > opt.restricted_max_jobs):  # (smaller: the restricted master's bound)
        # a gap this wide after the primal steps is mostly bound: large jobs that cannot share
        # a pool, whose integer placement lifts it (packing_bound.py; on trace instances the LP
        # bound stayed 8% below every plan)
        # (a quarter of the time is left to the primal steps whatever happens)
        pack_time = min(opt.packing_share * time_limit,
                        max(0.75 * time_limit - elapsed(), 0.0))
        if use_lp and cg.lp is not None:  # the best L_B over the duals, from the LP's columns
            support = np.union1d(cg.lp.lp_cols, best.chosen[best.chosen >= 0])
            pb = packing_column_generation(prep, pricer, cols, support, pricing,
                                           best.objective, time_limit=pack_time)
        else:  # an LP master of this size is too slow: L_B at the ascent's duals
            pb = packing_bound(prep, pricer, pricing, time_limit=pack_time)
        if pb is not None and pb > bound:
            bound = state["bound"] = pb
            report("bound", "large jobs packed")
        tick = mark("packing_bound", tick)
    if not use_lp and relative_gap(best.objective, bound) > rel_gap:
        # large pools pack well, so what the gap lacks here is bound, not plan (10,000 x 24 x
        # 168: the repack and search found 0.05% in 50 s, 40 s more ascent 0.4%): resume the
        # ascent from its best duals until the gap closes or its share ends, again through
        # tie-broken stages, now towards the plan just found (on the daemon's 10,000-job
        # instance the true-cost ascent stalls at once: ties again)
        more_time = max(opt.bound_more_share * (time_limit - elapsed()), 0.0)
        if opt.tie_break:
            more = ascend_by_continuation(pricer, y_best, best.objective, best.schedule(),
                                          time_limit=more_time, tol=rel_gap,
                                          on_iteration=on_ascent, stall=opt.bound_more_stall)
        else:
            more = ascend(pricer, y_best, best.objective, max_iter=1_000_000,
                          time_limit=more_time, tol=rel_gap, alpha=0.3,
                          on_iteration=on_ascent, stall=opt.bound_more_stall)
        tick = mark("ascent", tick)
        report("bound", "Lagrangian ascent resumed")
        gain = more.bound - bound
        bound = state["bound"] = max(bound, more.bound)
        if gain > 0.5 * rel_gap * abs(best.objective):
            # the plan was priced at duals this far off the bound's: price it again (a 10,000-
            # job plan from a short ascent stays 5% above the optimum however long it searches)
            y_best, pricing = more.duals, more.pricing
            best = greedy_at(prep, pricer, cols, y_best, best)
            lns = search_at(prep, pricer, cols, y_best, pricing, cg, best, be, opt,
                            time_limit=max(time_limit - elapsed(), 0.0))
            state["objective"] = best.objective
            tick = mark("primal", tick)
            report("primal", "dual-priced greedy and single-job moves at the new prices")
    rounds = opt.repack_rounds if unit_jobs(lns).size <= opt.repack_max_jobs else 0
    repair = repack_repair(opt, n_free, time_limit) if rounds else None
    for _ in range(rounds):
        # repeat while a round still pays; each round re-solves the LP from the new plan
        left = min(time_limit - elapsed() - reserve, opt.repack_share * time_limit)
        bound = lifted(bound)
        if relative_gap(best.objective, bound) <= rel_gap or left <= 0:
            break
        repack = repack_unit_jobs(lns, time_limit=left, repair=repair)
        state["objective"] = best.objective
        tick = mark("unit_repack", tick)
        report("primal", f"unit jobs repacked from their LP: -${repack.gain:.2f} of "
               f"${repack.promise:.2f} promised"
               + (" (rounding repaired by the moves)" if repack.moved else ""))
        if repack.gain <= 1e-3 * best.objective:
            break
    last = [time.perf_counter()]

    def on_lns(it: int, objective: float) -> None:
        state["objective"] = objective
        if time.perf_counter() - last[0] > 0.25:
            last[0] = time.perf_counter()
            report("search", f"neighbourhood {it}")

    bound = lifted(bound)

    def target_of(b: float) -> float:
        """The objective at which the plan meets `rel_gap` against bound `b`."""
        return b / (1 - rel_gap) if b > 0 else b

    target = target_of(bound)
    proved = False
    if relative_gap(best.objective, bound) > rel_gap and n_free <= opt.completion_max_jobs:
        proved = complete(prep, pricer, cols, best, y_best, pricing, be,
                          time_limit=max(min(time_limit - elapsed(),
                                             opt.completion_share * time_limit), 0.0), opt=opt)
        tick = mark("completion", tick)
    search_time = time_limit - elapsed() - reserve
    if not proved and relative_gap(best.objective, bound) > rel_gap and search_time > 0:
        end = time.perf_counter() + search_time
        every = opt.repack_every * time_limit
        interleave = every > 0 and rounds > 0 and lns.free_jobs.size > lns.max_jobs
        if local_search_ready(opt, n_free):  # (imports numba only for plans that get here)
            from carbonplan.planner import local_search

            ls = local_search.improve(lns, min(opt.local_search_share * time_limit,
                                               0.8 * search_time), target=target,
                                      seed=opt.seed,
                                      workers=min(opt.local_search_workers, cores()))
            state["objective"] = best.objective
            tick = mark("local_search", tick)
            report("search", f"local search: {ls.attempts} moves tried, -${ls.gain:.2f}")
            bound = lifted(bound)
            target = target_of(bound)
        while True:
            chunk = end - time.perf_counter()
            if interleave and chunk > 1.5 * every:  # (a shorter tail is searched in one go)
                chunk = every
            lns.run(time_limit=chunk, target=target, on_iteration=on_lns,
                    workers=search_workers(opt, be))
            left = end - time.perf_counter()
            if not interleave or left <= 0 or best.objective <= target:
                break
            repack_unit_jobs(lns, time_limit=min(left, opt.repack_share * time_limit),
                             repair=repair)
        tick = mark("search", tick)
        if (time_limit - elapsed() > 0 and relative_gap(best.objective, bound) > rel_gap
                and n_free <= opt.completion_max_jobs):
            proved = complete(prep, pricer, cols, best, y_best, pricing, be,
                              time_limit=time_limit - elapsed(), opt=opt)
            tick = mark("completion", tick)
    if tail is not None:
        if not proved:  # (its LP ends by the reserve)
            late = relative_gap(best.objective, bound) > rel_gap
            bound = lifted(bound, max(t0 + time_limit - reserve - time.perf_counter(), 0.0)
                           if late else 0.0)
        tail.stop()
    sched = best.schedule()
    fixed = np.flatnonzero(~prep.free)
    if fixed.size:
        sched = sched.replace(fixed, prep.frozen)
    sched = shift_earlier(prep, sched)  # earliest no-dearer start; the objective cannot rise
    ev = evaluate(prep.inst, sched, prep.cc)
    # the shift may find a strictly cheaper start the search left (a slot freed late in the
    # search): report the plan actually returned
    objective = min(best.objective, ev.objective)
    if proved:
        bound = objective
    elif bound > objective and bound - objective <= 1e-9 * max(1.0, abs(objective)):
        bound = objective  # rounding noise of the Lagrangian sum
    state.update(objective=objective, bound=bound)
    gap = relative_gap(objective, bound)
    if gap <= 1e-9 or proved:
        term = Termination.OPTIMAL
    elif gap <= rel_gap:
        term = Termination.GAP_REACHED
    else:
        term = Termination.TIME_LIMIT
    res = SolveResult(termination=term, objective=objective, bound=bound,
                      iterations=cg.iterations, columns=len(cols), seconds=elapsed(),
                      solution=sched, message=f"lns {lns.stats.iterations} moves, "
                                              f"{lns.stats.improvements} improving")
    report("done", term.value)
    return PlanResult(schedule=sched, evaluation=ev, result=res, duals=y_best,
                      lp_objective=cg.lp_objective, timings=timings, lns=lns.stats)


def _resolved(opt: PlanOptions, time_limit: float) -> PlanOptions:
    """Fill the search settings left to None from the time budget."""
    long = time_limit >= 30.0
    auto = {"top_k": 20 if long else 10, "lns_jobs": 60 if long else 30,
            "lns_window": 8 if long else 12, "lns_sub_time": 0.5 if long else 0.15,
            "lns_sub_gap": 1e-4 if long else 0.005}
    return dataclasses.replace(opt, **{k: v for k, v in auto.items()
                                       if getattr(opt, k) is None})


def local_search_ready(opt: PlanOptions, n_free: int, *, warm: bool = True) -> bool:
    """Whether this plan runs the compiled moves: on, in their size range, and compiled (with
    `warm`, a cold cache starts their compilation in the background for later plans instead)."""
    if opt.local_search_share <= 0 or n_free > opt.local_search_max_jobs:
        return False
    try:
        from carbonplan.planner import local_search  # imports numba: only when used
    except ImportError:  # fail open: the sub-MIPs alone
        return False
    if local_search.ready():
        return True
    if warm:
        local_search.warm_up()
    return False


def repack_repair(opt: PlanOptions, n_free: int, time_limit: float
                  ) -> Callable[[LNS, float], object] | None:
    """The unit repack's repair: the compiled moves for `repack_repair_share` of the time
    limit (at most what the repack has left) from a rounded plan that is not cheaper
    (unit_repack.py); None when they are off."""
    if opt.repack_repair_share <= 0 or not local_search_ready(opt, n_free, warm=False):
        return None
    from carbonplan.planner import local_search

    def repair(lns: LNS, left: float) -> object:
        # descent only (temperature 0): in 0.3 s an annealed start spends moves going uphill
        # (1,000 x 12 x 72 at 10 s, 28 paired plans: mean gap 0.03 points lower)
        return local_search.improve(lns, min(opt.repack_repair_share * time_limit, left),
                                    seed=opt.seed,
                                    workers=min(opt.local_search_workers, cores()), t0=0.0)

    return repair


def background_ready(opt: PlanOptions, n_free: int) -> bool:
    """Whether the local search also runs beside column generation: on, above the restricted
    master's size (whose instances the exact steps finish), with a second core to run on, and
    ready as the search stage's is (that stage, not this one, starts a cold cache's warm-up)."""
    if not opt.background_moves or n_free <= opt.restricted_max_jobs:
        return False
    return cores() >= 2 and local_search_ready(opt, n_free, warm=False)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on Linux)
        return os.cpu_count() or 1


def adopt_background(prep: Prepared, cols: ColumnSet, best: Incumbent,
                     moving: object) -> tuple[Incumbent, int]:
    """Stop the background local search; its best plan if cheaper than `best`, and its moves."""
    found = moving.result()
    if found is None:
        return best, 0
    pool, start, attempts = found
    jobs = np.flatnonzero(prep.free)
    chosen = np.full(prep.n_jobs, -1, dtype=np.int64)
    chosen[jobs] = run_columns(prep, cols, jobs, pool[jobs], start[jobs])
    inc = Incumbent(prep, cols, chosen)
    return (inc if inc.objective < best.objective - 1e-9 else best), attempts


def search_workers(opt: PlanOptions, backend: Backend) -> int:
    """Sub-MIPs the search solves at once: threads pay off only where the solver releases the
    GIL (highspy does); PuLP and Pyomo go through files and solver processes, one at a time."""
    if getattr(backend, "name", "") != "highs":
        return 1
    return max(1, min(opt.workers, cores()))


def adopt(prep: Prepared, cols: ColumnSet, sched: Schedule) -> np.ndarray:
    """Turn a schedule into columns of `cols`, keeping only placements that are valid columns
    and fit (in job order); the others become unplanned. Returns the column per job (J,)."""
    inst = prep.inst
    J = prep.n_jobs
    chosen = np.full(J, -1, dtype=np.int64)
    if sched.n_jobs != J:
        return chosen
    from carbonplan.planner.evaluate import _invalid

    planned = (sched.pool >= 0) & prep.free
    counts = np.diff(sched.indptr)
    invalid = _invalid(inst, sched, sched.pool >= 0, counts)
    start, end = sched.start, sched.end
    pool = np.maximum(sched.pool, 0)
    in_window = (start >= prep.win.earliest) & (end <= prep.win.latest_end[np.arange(J), pool])
    ok = planned & ~invalid & in_window
    jobs = np.flatnonzero(ok)
    if jobs.size == 0:
        return chosen
    sub_counts = counts[jobs]
    indptr = np.zeros(len(jobs) + 1, dtype=np.int64)
    np.cumsum(sub_counts, out=indptr[1:])
    take = np.repeat(sched.indptr[:-1][jobs], sub_counts) + (
        np.arange(indptr[-1]) - np.repeat(indptr[:-1], sub_counts))
    idx = cols.add(inst, prep.cc, jobs, sched.pool[jobs], indptr, sched.slots[take])
    res = Residual.of(prep)
    for j, c in zip(jobs, idx, strict=True):
        if not cols.objective[c] < prep.penalty[j]:
            continue
        if res.fits(prep, int(j), int(cols.pool[c]), cols.column_slots(c),
                    float(cols.t_co2e[c])):
            res.take(prep, int(j), int(cols.pool[c]), cols.column_slots(c),
                     float(cols.t_co2e[c]))
            chosen[j] = c
    return chosen


def dual_greedy(prep: Prepared, pricer: Pricer, cols: ColumnSet, duals: Duals,
                rounds: int = 3) -> list[np.ndarray]:
    """Greedy plans priced at `duals`: jobs by decreasing size (unit-slots) per candidate start,
    i.e. big jobs with few options first; then unplaced jobs are moved to the front and re-run.

    Returns:
        the chosen column per job (J,) of each round.
    """
    J = prep.n_jobs
    cand = pricer.dense(duals)
    order = size_order(prep, cand)
    out = []
    for _ in range(rounds):
        res = Residual.of(prep)
        pool, start = place_dense(prep, cand, order, res, limit=prep.penalty)
        placed = pool >= 0
        chosen = np.full(J, -1, dtype=np.int64)
        chosen[order] = run_columns(prep, cols, order, pool, start)
        out.append(chosen)
        unplaced = order[~placed]
        if unplaced.size == 0:
            break
        order = np.concatenate([unplaced, order[placed]])
    return out


def greedy_at(prep: Prepared, pricer: Pricer, cols: ColumnSet, duals: Duals,
              best: Incumbent) -> Incumbent:
    """The dual-priced greedy's plans at `duals`; the cheapest of them and `best`."""
    for chosen in dual_greedy(prep, pricer, cols, duals):
        inc = Incumbent(prep, cols, chosen)
        if inc.objective < best.objective - 1e-9:
            best = inc
    return best


def search_at(prep: Prepared, pricer: Pricer, cols: ColumnSet, duals: Duals,
              pricing: PricingResult, cg: CGResult, best: Incumbent, be: Backend,
              opt: PlanOptions, *, time_limit: float) -> LNS:
    """The search around `best` with candidates priced at `duals`, after its single-job moves
    (which improve `best` in place)."""
    cand_ptr, cand_idx = candidates(prep, pricer, cols, duals, pricing, cg, best.chosen,
                                    opt.top_k)
    lns = LNS(prep, cols, cand_ptr, cand_idx, best, duals, pricing.job_rc, be, seed=opt.seed,
              max_jobs=opt.lns_jobs, window=opt.lns_window, sub_time_limit=opt.lns_sub_time,
              sub_rel_gap=opt.lns_sub_gap, dense=pricer.dense(duals))
    lns.one_opt(time_limit=time_limit)
    return lns


def candidates(prep: Prepared, pricer: Pricer, cols: ColumnSet, duals: Duals,
               pricing: PricingResult, cg: CGResult, chosen: np.ndarray, top_k: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Each job's candidate columns for the search: its `top_k` cheapest contiguous columns at
    `duals`, its cheapest pausable column per pool, its LP master columns and its incumbent.

    Returns:
        CSR (ptr (J+1,), idx (K,)) of column indices, sorted by reduced cost within a job.
    """
    inst = prep.inst
    J = prep.n_jobs
    j, p, s, _ = pricer.top_contiguous(duals, top_k)
    indptr, slots = contiguous_slots(s, inst.duration_slots[j, p])
    parts = [cols.add(inst, prep.cc, j, p, indptr, slots)]
    pj, pp = np.nonzero(pricing.pair_group >= 0)
    if pj.size:
        parts.append(add_priced_columns(pricer, pricing, cols, pj, pp))
    if cg.lp is not None:
        parts.append(cg.lp.lp_cols)
    parts.append(chosen[chosen >= 0])
    idx = np.unique(np.concatenate(parts))
    rc = column_reduced_costs(prep, cols, idx, duals)
    order = np.lexsort((rc, cols.job[idx]))
    idx = idx[order]
    ptr = np.zeros(J + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols.job[idx], minlength=J), out=ptr[1:])
    return ptr, idx


def complete(prep: Prepared, pricer: Pricer, cols: ColumnSet, inc: Incumbent, duals: Duals,
             pricing: PricingResult, backend: Backend, *, time_limit: float,
             opt: PlanOptions) -> bool:
    """Add every column within the gap and solve the integer master exactly.

    Any plan cheaper than the incumbent uses only columns whose reduced cost exceeds its job's
    Lagrangian minimum by less than (incumbent - L(y)) at the duals y of `pricing`
    (docs/model.md), so when all of them fit in `opt.completion_columns` and the exact solve ends
    optimal, the result is proved optimal. The gap is L(y)'s own, not the plan's best bound: a
    bound from elsewhere (the restricted master's) says nothing about reduced costs at y.
    Updates `inc` if a better plan is found. Returns whether optimality was proved.
    """
    inst = prep.inst
    if not inc.objective >= pricing.lagrangian:  # also catches a non-finite value
        return False
    gap = within_gap(prep, pricer, cols, inc.objective, duals, pricing,
                     max_columns=opt.completion_columns)
    if gap is None:
        return False
    exact, pj, pp, delta = gap
    m = pricing.job_rc
    count = len(exact)
    parts = [exact]
    # pausable pairs whose cheapest column is within the gap: enumerated exhaustively when their
    # window is small, else by a search pruned at the gap
    for j, p in zip(pj.tolist(), pp.tolist(), strict=True):
        width = int(prep.win.latest_end[j, p] - prep.win.earliest[j])
        if width <= opt.pausable_enum_window:
            ip, sl = enumerate_pausable(prep, j, p)
        else:
            try:
                ip, sl = pausable_columns_under(prep, j, p, duals, float(m[j] + delta),
                                                max_columns=opt.completion_columns - count)
            except TooMany:
                return False
        count += len(ip) - 1
        if count > opt.completion_columns:
            return False
        if len(ip) > 1:
            idx = cols.add(inst, prep.cc, np.full(len(ip) - 1, j), np.full(len(ip) - 1, p), ip,
                           sl)
            rc = column_reduced_costs(prep, cols, idx, duals)
            parts.append(idx[rc - m[j] <= delta + 1e-9])
    parts.append(inc.chosen[inc.chosen >= 0])
    which = np.unique(np.concatenate(parts))
    if which.size > opt.completion_columns:
        return False
    res = solve_over(prep, cols, inc, which, backend, time_limit=time_limit, rel_gap=0.0)
    return res.termination is Termination.OPTIMAL


def enumerate_pausable(prep: Prepared, j: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pausable column of job j on pool p (window up to ~16 slots), as CSR slot lists.

    A column has segments; every segment after the first starts with `resume_slots` resume
    slots; the work slots total exactly `duration_slots[j, p]`.
    """
    inst = prep.inst
    lo = int(prep.win.earliest[j])
    W = int(prep.win.latest_end[j, p]) - lo
    n = int(inst.duration_slots[j, p])
    r = int(inst.resume_slots[j])
    if W <= 0 or n > W:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32)
    masks = np.arange(1 << W, dtype=np.int64)
    bits = ((masks[:, None] >> np.arange(W)[None, :]) & 1).astype(bool)
    prev = np.zeros_like(bits)
    prev[:, 1:] = bits[:, :-1]
    nxt = np.zeros_like(bits)
    nxt[:, :-1] = bits[:, 1:]
    starts = bits & ~prev
    ends = bits & ~nxt
    segs = starts.sum(axis=1)
    count = bits.sum(axis=1)
    ok = (segs >= 1) & (count == n + (segs - 1) * r)
    # every segment after the first is longer than r (resume slots plus some work)
    run = np.zeros(len(masks), dtype=np.int64)
    seen = np.zeros(len(masks), dtype=np.int64)
    for k in range(W):
        run = np.where(bits[:, k], run + 1, 0)
        seen = seen + starts[:, k].astype(np.int64)
        short = ends[:, k] & (seen > 1) & (run <= r)
        ok &= ~short
    sel = bits[ok]
    counts = sel.sum(axis=1)
    indptr = np.zeros(len(sel) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    slots = (np.nonzero(sel)[1] + lo).astype(np.int32)
    return indptr, slots
