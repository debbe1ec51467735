"""The phase-space claims of TCR: it facilitates attractor formation (C4) and promotes slow dynamics and
ramping activity (C8). Both read the checkpoint analysis and compare λ>0 with λ=0 runs of the same stratum,
seed-paired (``tcr_effect``).

C4  As C3 on runs.tsv ``time_to_attractors`` = the first checkpoint iteration at which n_stable reaches the
    task's expected count (``rnngeom.constants.EXPECTED_STABLE``, flipflop: 8 = 2^3 stable fixed points; runs
    of tasks without a known count, and of the freeze-in family, are left out), censored at the last
    checkpoint + one checkpoint interval if never reached (``rnngeom.aggregate``): "earlier" and "more often"
    in one number. Effect = median relative speed-up; the counts of runs that reached the count per arm are in
    the text. Precondition: the search phase.
C8  Final checkpoint of each non-diverged run. Primary (the effect columns): median relative reduction of the
    final mean_speed, 1 − speed(λ>0)/speed(λ=0). Secondary: difference of the ramping excess
    ramping_index − ramping_null (the index of autocorrelation-matched surrogate activity without a ramp: TCR
    raises autocorrelation, which alone raises the raw index), minimal effect ``RAMPING_MIN_EFFECT``. The
    claim has two parts, so the verdict is the weaker of the two parts' verdicts (supported only if both are;
    not supported if either is; no ramping_index / ramping_null column, or no comparable ramping values: at
    most inconclusive). No precondition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rnngeom.claims.claim_data import ClaimData
from rnngeom.claims.preconditions import search_precondition
from rnngeom.claims.tcr_effect import compare_tcr, not_freeze_in, outcome_from
from rnngeom.claims.verdict import MIN_EFFECT, NotRun, Outcome, weaker_verdict
from rnngeom.constants import EXPECTED_STABLE, final_checkpoints
from rnngeom.io import as_bool

RAMPING_MIN_EFFECT = 0.05  # C8's secondary part: minimal ramping excess (index above its null) of interest


def claim_c4(d: ClaimData) -> Outcome:
    runs = not_freeze_in(d.runs)
    runs = runs[runs["task"].isin(EXPECTED_STABLE)]
    if runs.empty:
        raise NotRun(f"needs runs of a task with a known attractor count ({EXPECTED_STABLE})")
    t_attr = runs["time_to_attractors"].astype(float) if "time_to_attractors" in runs.columns else None
    if t_attr is None or not np.isfinite(t_attr).any():
        raise NotRun("no checkpoint analysis (runs.tsv time_to_attractors) for these runs")
    precondition = search_precondition(runs)
    runs = runs.assign(t_attr=t_attr)
    comp = compare_tcr(
        runs,
        "t_attr",
        better="lower",
        scale="ratio",
        rng=d.rng,
        n_boot=d.n_boot,
        alpha=d.alpha,
        label="time to attractors (checkpoint analysis)",
    )
    runs = runs[runs["run_id"].isin(comp.run_ids)]
    reached = as_bool(runs["attractors_censored"]).eq(False)
    pos = runs["lambda_tcr"] > 0
    rates = (
        f"; reached the count: λ>0 {int((reached & pos).sum())}/{int(pos.sum())}, "
        f"λ=0 {int((reached & ~pos).sum())}/{int((~pos).sum())}"
    )
    what = (
        f"median relative speed-up in reaching the expected stable fixed points "
        f"({', '.join(f'{t}: ≥{c}' for t, c in EXPECTED_STABLE.items())}; runs.tsv time_to_attractors, "
        f"never = last checkpoint + interval)"
    )
    out = outcome_from("C4", comp, what, d.alpha, rates)
    out.precondition = precondition
    return out


def claim_c8(d: ClaimData) -> Outcome:
    ck = d.table("checkpoints")
    if ck.empty or "mean_speed" not in ck.columns:
        raise NotRun("no checkpoint analysis (checkpoints.tsv mean_speed) for these runs")
    final = final_checkpoints(ck)
    runs = d.runs[~as_bool(d.runs["diverged"]).eq(True)]
    runs = runs.assign(speed=runs["run_id"].map(final["mean_speed"]).astype(float))
    comp = compare_tcr(
        runs,
        "speed",
        better="lower",
        scale="ratio",
        rng=d.rng,
        n_boot=d.n_boot,
        alpha=d.alpha,
        label="final mean_speed",
    )
    verdict, why = comp.decide(MIN_EFFECT["C8"], d.alpha)
    if {"ramping_index", "ramping_null"} <= set(ck.columns):
        excess = pd.to_numeric(final["ramping_index"], errors="coerce") - pd.to_numeric(
            final["ramping_null"], errors="coerce"
        )
        runs = runs.assign(ramp=runs["run_id"].map(excess).astype(float))
        try:
            ramp = compare_tcr(
                runs,
                "ramp",
                better="higher",
                scale="difference",
                rng=d.rng,
                n_boot=d.n_boot,
                alpha=d.alpha,
                label="final ramping_index − ramping_null",
            )
            r_verdict, r_why = ramp.decide(RAMPING_MIN_EFFECT, d.alpha)
            secondary = (
                f"secondary: median Δ(ramping_index − ramping_null), λ>0 − λ=0 = {ramp.effect:.3g} "
                f"[{ramp.ci_low:.3g}, {ramp.ci_high:.3g}], p = {ramp.p_value:.3g} ({ramp.design}, "
                f"n = {ramp.n}) -> {r_verdict} ({r_why})"
            )
        except NotRun as err:
            r_verdict, secondary = "inconclusive", f"secondary: ramping index not comparable ({err})"
    else:
        r_verdict, secondary = (
            "inconclusive",
            "secondary: checkpoints.tsv has no ramping_index / "
            "ramping_null (autocorrelation-matched null) columns",
        )
    overall = weaker_verdict(verdict, r_verdict)
    test = "Wilcoxon signed-rank" if comp.design == "paired" else "Mann-Whitney U"
    text = (
        f"primary: median relative reduction of final-checkpoint mean_speed 1 − speed(λ>0)/speed(λ=0); "
        f"{comp.describe()}; one-sided {test}; {100 * (1 - d.alpha):g}% bootstrap CI -> {verdict} ({why}); "
        f"{secondary}; verdict = the weaker of the two parts"
    )
    return Outcome(overall, text, comp.n_runs, comp.effect, comp.ci_low, comp.ci_high, comp.p_value)
