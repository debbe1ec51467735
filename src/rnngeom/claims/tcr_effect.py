"""The effect of TCR on one quantity: λ>0 runs against λ=0 runs of the same conditions (``compare_tcr``), the
comparison shared by C3-C10.

* Matched conditions ("stratum", ``STRATUM``) = same task, arch, learning_rule and gain. λ>0 runs are compared
  only with λ=0 runs of their own stratum; strata without both arms are left out.
* Censoring is computed once, by ``rnngeom.aggregate``, into runs.tsv (the figures read the same columns), so
  a failure counts as the worst rank instead of dropping out: ``time_to_learn_censored`` = time_to_learn, or
  ``n_iterations + eval_every`` for a run that never met the learn criterion or diverged (``censored``): later
  than any run that learned; clipped below at one eval step so ratios are finite. ``time_to_attractors``
  likewise (C4).
* **Seed-paired**: a unit is a (stratum, seed) that has a λ=0 run and at least one λ>0 run. **All λ>0 values
  are pooled** (the unit's λ>0 value is the median over its λ>0 runs), so no λ is picked after seeing the
  results (C10 is the one exception: it takes each stratum's largest λ by design, ``treated="largest"``).
  Per unit, for a "lower is better" quantity x (time-to-learn, speed): speed-up s = 1 − x(λ>0)/x(λ=0); for a
  "higher is better" one (ramping index): d = x(λ>0) − x(λ=0); each oriented so that positive is the claimed
  direction. Effect = median over units; CI: percentile bootstrap of that median over units. p: one-sided
  Wilcoxon signed-rank (zero_method "zsplit": ties such as both-censored pairs count half each way) on
  log(x(λ=0)/x(λ>0)) (or on d).
* **Unpaired fallback**, when fewer than 3 (``MIN_N``) units can be paired: values are normalised within each
  stratum by the stratum's λ=0 median, the effect is 1 − median(λ>0)/median(λ=0) of the normalised values (or
  their difference of medians), p is a one-sided Mann-Whitney U test, and the bootstrap resamples runs within
  each (stratum, arm).

The freeze-in family (``not_freeze_in``) is left out of C3, C4, C5, C7, C9 and C10: its only learning signal
is TCR, so its λ=0 runs learn nothing and would flatter any speed-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rnngeom.claims.stats import bootstrap_median, mann_whitney_greater, percentile_ci, signed_rank_greater
from rnngeom.claims.verdict import MIN_EFFECT, MIN_N, NotRun, Outcome, decide

STRATUM = ["task", "arch", "learning_rule", "gain"]
FREEZE_IN = "freeze_in"  # the freeze-in rules' common prefix (freeze_in, freeze_in_noise, freeze_in_control)


@dataclass
class Comparison:
    """λ>0 vs λ=0 on one quantity; effect oriented so that positive = the claimed direction."""

    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int  # units (paired) or the smaller arm (unpaired)
    n_runs: int
    design: str  # "paired" or "unpaired"
    replicates: np.ndarray = field(repr=False)
    unit_scores: np.ndarray = field(repr=False)  # paired: oriented per-unit log ratios / differences
    lambdas: list = field(default_factory=list)
    run_ids: set = field(default_factory=set, repr=False)  # the runs that entered the comparison

    def describe(self) -> str:
        unit = "seed-paired units" if self.design == "paired" else "runs in the smaller arm (unpaired)"
        return f"{self.design}, n = {self.n} {unit}, λ>0 = {{{', '.join(f'{v:g}' for v in self.lambdas)}}}"

    def decide(self, min_effect: float, alpha: float) -> tuple[str, str]:
        """(verdict, reason) of this comparison by the verdict rule (``decide``)."""
        return decide(
            self.effect, self.ci_low, self.ci_high, self.p_value, n=self.n, min_effect=min_effect, alpha=alpha
        )


def compare_tcr(
    runs: pd.DataFrame,
    value: str,
    *,
    better: str,
    scale: str,
    rng: np.random.Generator,
    n_boot: int,
    alpha: float,
    treated: str = "pooled",
    label: str | None = None,
) -> Comparison:
    """Compare ``value`` between λ>0 and λ=0 runs of the same stratum (see the module docstring).

    better: "lower" or "higher" (the claimed direction); scale: "ratio" (effect 1 − x₊/x₀, or x₊/x₀ − 1
    when higher is claimed) or "difference" (x₊ − x₀, or x₀ − x₊ when lower is claimed).
    treated: "pooled" (every λ>0 run) or "largest" (each stratum's largest λ only). label: ``value`` in
    messages.
    Raises NotRun when no stratum holds both λ=0 and treated runs with a finite value.
    """
    sign = 1.0 if better == "higher" else -1.0
    df = runs[np.isfinite(runs[value].astype(float))].copy()
    if scale == "ratio":
        df = df[df[value] > 0]
    if treated == "largest":
        top = df.groupby(STRATUM, dropna=False)["lambda_tcr"].transform("max")
        df = df[(df["lambda_tcr"] == 0) | (df["lambda_tcr"] == top)]
    df["arm"] = np.where(df["lambda_tcr"] > 0, "t", "c")
    arms_per_stratum = df.groupby(STRATUM, dropna=False)["arm"].transform("nunique")
    df = df[arms_per_stratum == 2]
    if df.empty:
        found = ", ".join(f"{v:g}" for v in sorted(runs["lambda_tcr"].unique()))
        raise NotRun(
            "needs λ=0 and λ>0 runs in matched conditions (same task/arch/rule/gain) with a finite "
            f"{label or value}; found λ ∈ {{{found}}}"
        )
    lambdas = sorted(df.loc[df["arm"] == "t", "lambda_tcr"].unique())

    def unit_score(xt, xc):  # oriented per-unit score: positive = claimed direction
        return sign * (np.log(xt) - np.log(xc)) if scale == "ratio" else sign * (xt - xc)

    def unit_effect(xt, xc):
        return sign * (xt / xc - 1.0) if scale == "ratio" else sign * (xt - xc)

    per_unit = df.groupby(STRATUM + ["seed", "arm"], dropna=False)[value].median().unstack("arm").dropna()
    if len(per_unit) >= MIN_N:
        xt, xc = per_unit["t"].to_numpy(float), per_unit["c"].to_numpy(float)
        effects = unit_effect(xt, xc)
        scores = unit_score(xt, xc)
        reps = bootstrap_median(effects, rng, n_boot)
        lo, hi = percentile_ci(reps, alpha)
        used = df[df.set_index(STRATUM + ["seed"]).index.isin(per_unit.index)]
        return Comparison(
            float(np.median(effects)),
            lo,
            hi,
            signed_rank_greater(scores),
            len(per_unit),
            len(used),
            "paired",
            reps,
            scores,
            lambdas,
            set(used["run_id"]),
        )

    # Unpaired fallback: normalise within each stratum by its λ=0 median, pool, compare medians.
    groups = [g for _, g in df.groupby(STRATUM, dropna=False)]
    cells = [
        (g.loc[g["arm"] == "t", value].to_numpy(float), g.loc[g["arm"] == "c", value].to_numpy(float))
        for g in groups
    ]

    def pooled_effect(cells_):
        t_parts, c_parts = [], []
        for xt, xc in cells_:
            ref = np.median(xc)
            if scale == "ratio":
                t_parts.append(xt / ref), c_parts.append(xc / ref)
            else:
                t_parts.append(xt - ref), c_parts.append(xc - ref)
        mt, mc = np.median(np.concatenate(t_parts)), np.median(np.concatenate(c_parts))
        eff = sign * (mt / mc - 1.0) if scale == "ratio" else sign * (mt - mc)
        return eff, np.concatenate(t_parts), np.concatenate(c_parts)

    effect, t_norm, c_norm = pooled_effect(cells)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        resampled = [
            (xt[rng.integers(0, len(xt), len(xt))], xc[rng.integers(0, len(xc), len(xc))]) for xt, xc in cells
        ]
        reps[b] = pooled_effect(resampled)[0]
    lo, hi = percentile_ci(reps, alpha)
    if scale == "ratio":
        t_norm, c_norm = np.log(t_norm), np.log(c_norm)
    p = mann_whitney_greater(sign * t_norm, sign * c_norm)
    n = int(min(len(t_norm), len(c_norm)))
    return Comparison(
        float(effect), lo, hi, p, n, len(df), "unpaired", reps, np.array([]), lambdas, set(df["run_id"])
    )


def outcome_from(claim_id: str, comp: Comparison, what: str, alpha: float, extra: str = "") -> Outcome:
    """The claim-table row of a claim decided by one comparison: its verdict (with the claim's
    ``MIN_EFFECT``) and a statistic text of ``what`` was compared, the design and test, and ``extra``."""
    verdict, why = comp.decide(MIN_EFFECT[claim_id], alpha)
    test = "Wilcoxon signed-rank" if comp.design == "paired" else "Mann-Whitney U"
    text = (
        f"{what}; {comp.describe()}; one-sided {test}; {100 * (1 - alpha):g}% bootstrap CI{extra}; "
        f"verdict: {why}"
    )
    return Outcome(verdict, text, comp.n_runs, comp.effect, comp.ci_low, comp.ci_high, comp.p_value)


def not_freeze_in(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` without the freeze-in family (see the module docstring)."""
    return runs[~runs["learning_rule"].astype(str).str.startswith(FREEZE_IN)]
