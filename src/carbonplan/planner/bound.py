"""The Lagrangian lower bound and a cheap ascent on it that needs only pricing.

Relaxing the coupling rows (pool capacity, site power cap, carbon budget) with prices
y = (beta <= 0, pi <= 0, lam <= 0) leaves one independent choice per job, so for ANY such y

    L(y) = frozen cost + sum_pt cap[p,t] beta[p,t] + sum_st capkw[s,t] pi[s,t] + budget lam
           + sum_j min(M_j, min over all columns of j of rc_c(y))

is a lower bound on the optimum (for the LP master's duals this is z_LP + sum_j min(0, rc_j)).
`Pricer.price` computes it exactly, over every column of every job, not only generated ones.

`ascend` improves y by projected subgradient steps with a Polyak step length towards a target
(an upper bound), averaging the Lagrangian solutions as in the volume algorithm: the averaged
usage is the direction, and it approximates the LP's primal usage. It keeps the best y seen.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from carbonplan.planner.duals import Duals
from carbonplan.planner.prepare import Prepared
from carbonplan.planner.pricing import Pricer, PricingResult


def lagrangian_usage(pricer: Pricer, res: PricingResult
                     ) -> tuple[np.ndarray, np.ndarray, float]:
    """Resource use of the Lagrangian solution (each job on its cheapest column).

    Returns:
        (units (P, T), facility kW (S, T), tCO2e).
    """
    prep = pricer.prep
    inst, cc = prep.inst, prep.cc
    P, T, S = inst.n_pools, inst.n_slots, len(inst.site_names)
    jobs = np.flatnonzero(res.job_pool >= 0)
    pools = res.job_pool[jobs]
    indptr, slots = pricer.columns(res, jobs, pools)
    counts = np.diff(indptr)
    jj = np.repeat(jobs, counts)
    pp = np.repeat(pools, counts)
    units = np.bincount(pp * T + slots, weights=cc.units[jj, pp], minlength=P * T)
    kw = np.bincount(inst.site[pp].astype(np.int64) * T + slots,
                     weights=cc.facility_kw[jj, pp], minlength=S * T)
    t = 0.0
    if np.isfinite(prep.budget_t) and jobs.size:
        from carbonplan.planner.columns import price_columns

        t = float(price_columns(inst, cc, jobs, pools, indptr, slots).t_co2e.sum())
    return units.reshape(P, T), kw.reshape(S, T), t


@dataclass
class AscentResult:
    """Best duals found and their bound, plus the averaged Lagrangian usage."""

    duals: Duals
    bound: float
    iterations: int
    seconds: float
    avg_units: np.ndarray  # float (P, T): averaged usage (approximate LP usage)
    history: list[float]
    pricing: PricingResult  # pricing at the best duals


def ascend(pricer: Pricer, start: Duals, target: float, *, max_iter: int = 200,
           time_limit: float = np.inf, tol: float = 1e-4,
           on_iteration: Callable[[int, float, float], None] | None = None,
           collect: Callable[[PricingResult], None] | None = None, alpha: float = 0.3,
           target_weight: float = 1.0, theta: float = 1.0,
           stall: tuple[int, float] | None = None) -> AscentResult:
    """Projected subgradient / volume ascent on L(y) from `start`.

    Args:
        pricer: prices the jobs (the bound is over all their columns).
        start: initial duals (projected to <= 0).
        target: an upper bound estimate (objective of a feasible plan) for the Polyak step.
        alpha: weight of the newest Lagrangian solution in the averaged direction (1: plain
            subgradient).
        target_weight: the step aims at best + target_weight * (target - best).
        theta: initial step multiplier.
        max_iter: iteration limit.
        time_limit: seconds.
        tol: stop when (target - best bound) / |target| < tol.
        on_iteration: called with (iteration, L(y), best bound).
        collect: called with every pricing result (e.g. to keep the columns it found).
        stall: (k, f): stop once the last k iterations raised the bound by less than f times
            the gap left to `target` (the time is worth more elsewhere).
    """
    t_start = time.perf_counter()
    prep: Prepared = pricer.prep
    cap_ok = np.isfinite(prep.cap)
    pw_ok = np.isfinite(prep.power_cap)
    budget_ok = np.isfinite(prep.budget_t)
    cap = np.where(cap_ok, prep.cap, 0.0)
    pcap = np.where(pw_ok, prep.power_cap, 0.0)
    y = start.projected()
    y.mu = None
    res = pricer.price(y)
    if collect:
        collect(res)
    best_y, best_L, best_res = y.copy(), res.lagrangian, res
    units, kw, t = lagrangian_usage(pricer, res)
    avg_u, avg_kw, avg_t = units, kw, t
    misses = 0
    history = [res.lagrangian]
    it = 0
    for it in range(1, max_iter + 1):
        if time.perf_counter() - t_start > time_limit:
            break
        gap = target - best_L
        if gap <= tol * max(abs(target), 1e-9):
            break
        g_b = np.where(cap_ok, cap - avg_u, 0.0)
        g_p = np.where(pw_ok, pcap - avg_kw, 0.0)
        g_l = (prep.budget_t - avg_t) if budget_ok else 0.0
        # components that would only push a zero price further up are projected away
        g_b = np.where((best_y.beta >= 0) & (g_b > 0), 0.0, g_b)
        g_p = np.where((best_y.pi >= 0) & (g_p > 0), 0.0, g_p)
        if best_y.lam >= 0 and g_l > 0:
            g_l = 0.0
        norm = float((g_b ** 2).sum() + (g_p ** 2).sum() + g_l ** 2)
        if norm <= 1e-12:
            break
        step = theta * target_weight * gap / norm
        y = Duals(beta=np.minimum(best_y.beta + step * g_b, 0.0),
                  pi=np.minimum(best_y.pi + step * g_p, 0.0),
                  lam=min(best_y.lam + step * g_l, 0.0))
        res = pricer.price(y)
        if collect:
            collect(res)
        history.append(res.lagrangian)
        units, kw, t = lagrangian_usage(pricer, res)
        avg_u = alpha * units + (1 - alpha) * avg_u
        avg_kw = alpha * kw + (1 - alpha) * avg_kw
        avg_t = alpha * t + (1 - alpha) * avg_t
        if res.lagrangian > best_L:
            improvement = res.lagrangian - best_L
            best_y, best_L, best_res = y.copy(), res.lagrangian, res
            misses = 0
            if improvement > 0.01 * max(gap, 1e-12):
                theta = min(theta * 1.1, 2.0)
        else:
            misses += 1
            if misses >= 3:
                theta *= 0.6
                misses = 0
        if on_iteration:
            on_iteration(it, res.lagrangian, best_L)
        if theta < 1e-4:
            break
        if stall is not None and it >= stall[0]:
            best_before = max(history[:-stall[0]])
            if best_L - best_before < stall[1] * (target - best_L):
                break
    return AscentResult(duals=best_y, bound=best_L, iterations=it,
                        seconds=time.perf_counter() - t_start, avg_units=avg_u, history=history,
                        pricing=best_res)
