"""C11, freeze-in without control collapses to trivial fixed points.

λ>0 runs of learning_rule "freeze_in" against those of the controlled variants ``FREEZE_IN_CONTROLLED``
("freeze_in_noise", "freeze_in_control", pooled), compared on what the λ(t) controller does not set: the
fixed-point structure at the final checkpoint (checkpoints.tsv). A run has collapsed (``collapsed``) when it
ends with at most one fixed point of any stability (n_fixed = stable + saddle + unstable ≤ 1: a single trivial
fixed point, or none, and nothing beside it). Effect = fraction collapsed (freeze_in) − fraction collapsed
(controlled); CI: percentile bootstrap within each arm; p: one-sided Fisher exact test on the 2 × 2 table of
collapsed / not collapsed by arm; n = the smaller arm; per-rule counts in the text. The final activity
variance (metrics.tsv activity_var), which the controller steers towards its target, is reported but decides
nothing. No precondition.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from rnngeom.claims.claim_data import ClaimData
from rnngeom.claims.stats import percentile_ci
from rnngeom.claims.tcr_effect import FREEZE_IN
from rnngeom.claims.verdict import MIN_EFFECT, NotRun, Outcome, decide
from rnngeom.constants import final_checkpoints

FREEZE_IN_CONTROLLED = ("freeze_in_noise", "freeze_in_control")
LOG_FLOOR = 1e-12


def collapsed(checkpoints: pd.DataFrame) -> pd.Series:
    """Per run (index run_id): True if its final checkpoint holds at most one fixed point of any stability
    (n_fixed = stable + saddle + unstable <= 1): a single trivial attractor, or none, and nothing beside it.

    Settled on exploration seeds (config/explore.yaml, seeds 1000-1005), before the confirmation runs: the
    first criterion, n_stable <= 1, counted the controlled runs (one stable point and 1-4 saddles, the
    structure the controller keeps) as collapsed, as often as the uncontrolled ones."""
    final = final_checkpoints(checkpoints)
    return pd.to_numeric(final["n_fixed"], errors="coerce").dropna() <= 1


def claim_c11(d: ClaimData) -> Outcome:
    runs = d.runs[d.runs["lambda_tcr"] > 0]
    free = runs[runs["learning_rule"] == FREEZE_IN]
    ctrl = runs[runs["learning_rule"].isin(FREEZE_IN_CONTROLLED)]
    if free.empty or ctrl.empty:
        raise NotRun(
            f"needs λ>0 runs of '{FREEZE_IN}' and of {FREEZE_IN_CONTROLLED}; found rules "
            f"{sorted(d.runs['learning_rule'].unique())}"
        )
    ck = d.table("checkpoints")
    if ck.empty or "n_fixed" not in ck.columns:
        raise NotRun("no checkpoint analysis (checkpoints.tsv n_fixed) for the freeze-in runs")
    is_collapsed = collapsed(ck)

    def arm(runs) -> np.ndarray:  # collapsed or not, for the runs with a final fixed-point count
        return runs["run_id"].map(is_collapsed).dropna().astype(bool).to_numpy()

    cf, cc = arm(free), arm(ctrl)
    per_rule = ", ".join(
        f"{rule} {int(x.sum())}/{len(x)}"
        for rule, x in ((r, arm(ctrl[ctrl["learning_rule"] == r])) for r in FREEZE_IN_CONTROLLED)
    )
    if len(cf) == 0 or len(cc) == 0:
        raise NotRun("no final-checkpoint fixed points for the freeze-in runs of one arm")
    effect = float(cf.mean() - cc.mean())
    reps = cf[d.rng.integers(0, len(cf), (d.n_boot, len(cf)))].mean(axis=1) - cc[
        d.rng.integers(0, len(cc), (d.n_boot, len(cc)))
    ].mean(axis=1)
    lo, hi = percentile_ci(reps, d.alpha)
    table = [[int(cf.sum()), int((~cf).sum())], [int(cc.sum()), int((~cc).sum())]]
    p = float(stats.fisher_exact(table, alternative="greater").pvalue)
    n = int(min(len(cf), len(cc)))
    verdict, why = decide(effect, lo, hi, p, n=n, min_effect=MIN_EFFECT["C11"], alpha=d.alpha)
    variance = ""
    metrics = d.table("metrics")
    if "activity_var" in metrics.columns:  # reported only: the controller sets it, so it cannot decide
        m = metrics[np.isfinite(pd.to_numeric(metrics["activity_var"], errors="coerce"))]
        last = m.sort_values(["run_id", "iteration"], kind="stable").groupby("run_id")["activity_var"].last()

        def median_log_var(group):
            v = group["run_id"].map(last).astype(float).dropna().to_numpy()
            return np.median(np.log10(np.maximum(v, LOG_FLOOR))) if len(v) else math.nan

        variance = (
            f"; median final log10 activity_var (set by the controller, not tested): freeze_in "
            f"{median_log_var(free):.3g}, controlled {median_log_var(ctrl):.3g}"
        )
    text = (
        f"runs collapsed at the final checkpoint (n_fixed ≤ 1: a single trivial fixed point or none): "
        f"freeze_in {int(cf.sum())}/{len(cf)}, controlled {int(cc.sum())}/{len(cc)} ({per_rule}); "
        f"effect = difference of the fractions; {100 * (1 - d.alpha):g}% bootstrap "
        f"CI within arms; one-sided Fisher exact test{variance}; verdict: {why}"
    )
    return Outcome(verdict, text, len(cf) + len(cc), effect, lo, hi, p)
