"""The claim table: one row per claim C1..C11 of the paper, with an effect size, a CI, a p-value and a
verdict.

    python -m rnngeom.claims --tables results/tables --experiments @experiments.json --claims @claims.json \\
        --out results/claims.tsv --markdown results/claims.md

Inputs are the tidy tables of ``rnngeom.aggregate`` (runs, metrics, checkpoints, fixed_points, events), a map
experiment -> [run_id, ...] (``--experiments``: each experiment's exact run list), and a map claim id ->
{"experiment": name or [names], "figure": name} (the config's claim section). The shared values
(the flip-flop's 8 stable points, the gain threshold 1.0) live in ``rnngeom.constants``.
Every statistic below was fixed before looking at any result; none is tuned to the data.

Output columns: claim_id, claim, experiment, n_runs, statistic, effect, ci_low, ci_high, p_value, verdict,
figure. There are always 11 rows, in order C1..C11. ``statistic`` says in words what was computed (or, for
"not run", why nothing could be).

Shared conventions
------------------
* Runs of a claim = the runs of its experiment(s) present in runs.tsv (the union, each run once), selected by
  exact run_id membership (never by a grid of key values).
* Matched conditions ("stratum") = same task, arch, learning_rule and gain. λ>0 runs are compared only with
  λ=0 runs of their own stratum.
* Censoring is computed once, by ``rnngeom.aggregate``, into runs.tsv (the figures read the same columns):
  ``time_to_learn_censored`` = time_to_learn, or ``n_iterations + eval_every`` for a run that never reached
  the accuracy threshold or diverged (``censored``): later than any run that learned, i.e. the worst rank;
  clipped below at one eval step so ratios are finite. ``time_to_attractors`` likewise (C4).
* TCR comparisons (C3-C10) are **seed-paired**: a unit is a (stratum, seed) that has a λ=0 run and at
  least one λ>0 run. **All λ>0 values are pooled** (the unit's λ>0 value is the median over its λ>0 runs),
  so no λ is picked after seeing the results (C10 is the one exception: it uses the largest λ by design).
  Per unit, for a "lower is better" quantity x (time-to-learn, speed): speed-up s = 1 − x(λ>0)/x(λ=0);
  for a "higher is better" one (ramping index): d = x(λ>0) − x(λ=0). Effect = median over units.
  p: one-sided Wilcoxon signed-rank (zero_method "zsplit": ties such as both-censored pairs count half
  each way) on log(x(λ=0)/x(λ>0)) (or on d). When fewer than 3 units can be paired, the fallback is
  unpaired: values are normalised within each stratum by the stratum's λ=0 median, the effect is
  1 − median(λ>0)/median(λ=0) of the normalised values (or their difference of medians), p is a one-sided
  Mann-Whitney U test, and the bootstrap resamples runs within each (stratum, arm).
* CIs: (1 − alpha) percentile bootstrap, ``n_boot`` resamples of units (or of runs within groups), rng
  seeded by (seed, claim number), so the table is a deterministic function of its inputs.
  The proportion of C1 uses the exact Clopper-Pearson interval instead; C2 bootstraps its runs; C11
  resamples runs within each arm.
* Every effect is oriented so that a **positive effect (or a proportion or C2's mean rank above 0.5) is the
  claimed direction**.

Verdict rule (``decide``)
-------------------------
With n = the size of the smallest group (units, runs, or runs per arm), null = 0 (0.5 for C1's proportion
and C2's mean rank), and a minimal effect of interest m per claim (``MIN_EFFECT``: 0.10 relative speed-up /
slow-down / reduction, 0.10 difference of speed-ups, 0.05 ramping index above its null, 0.20 difference of
collapse fractions (C11), 0 above 0.5 for C1 and C2):

1. "inconclusive" if n < 3 (``MIN_N``) or the effect/CI/p is undefined;
2. "supported" if the CI lies entirely above the null AND p < alpha;
3. "not supported" if the CI lies entirely below the null (the opposite direction), or if n ≥ 8
   (``DECISIVE_N``) and the whole CI lies below null + m (enough data to rule out any effect worth claiming);
4. "inconclusive" otherwise.
"not run": the claim has no experiment in the config, its experiment has no runs in the tables, or the runs
lack the conditions it needs (e.g. only λ=0, no rflo runs, no checkpoint analysis, no activity_var column).

Per claim
---------
C1  abrupt learning. Learned (not censored) runs with an analysed loss curve; effect = fraction with
    ``abrupt`` (the loss-drop analysis: a plateau near the initial loss for a minimum fraction of the run,
    then a fall that is fast relative to the run length); Clopper-Pearson CI; one-sided exact binomial test
    against 0.5 (null: an abrupt plateau-then-drop is no more common than not; the claim is that it is the
    typical course of training). Pooled over tasks, archs and λ. Median plateau_fraction and drop_width_rel
    of the abrupt runs are reported in the text.
C2  GR precedes the drop. The first calibrated event t_GR is the first of many chances to fire, so
    P(t_GR < t_drop) is far above 0.5 when GR is independent of the drop: no test on t_GR is used. Nor is a
    within-run null (the pre-drop window ranked among all window positions of the run's own series): it
    assumes a stationary GR series and a drop at a uniformly random position, but GR is largest early in
    training (the search phase) and drops come mid-run, and then that test is anti-conservative (its pre-drop
    window lies before the drop, where GR is higher: 22 % false positives at alpha 0.05 on the trending
    simulated null, 10,000 experiments of 20 runs). Instead a **between-run permutation**: per run with a
    t_drop, S(t) = mean calibrated GR ratio r_k = gr_score / gr_null_q over the ``C2_WINDOW`` (3) checkpoint
    transitions ending at or before iteration t; S at the run's own t_drop is ranked among S at the t_drop of
    every other run of its condition (``C2_CONDITION``: stratum, λ and n_iterations; mapped by iteration; drop
    times at which the window does not fit the run's series are skipped): u = (mid-rank − 1)/(m − 1) in
    [0, 1], 1 = more restructuring just before its own drop than just before any other run's. This compares
    each run with itself at the same iterations, so it keeps each run's own GR trend, and the reference times
    are the drops' real timing distribution. Effect = mean u over runs (null 0.5); CI: percentile bootstrap
    over runs; p: one-sided permutation test of the mean u, reassigning the drop times across the runs of each
    condition at random, p = (1 + #{T_b ≥ T}) / (1 + B). Exact when the drop times are exchangeable within a
    condition (GR independent of the drop, the runs of a condition differing only in seed), whatever the
    trend. Runs need ≥ ``C2_MIN_TRANSITIONS`` (8) scored transitions, 3 of them before t_drop, and another
    fitting drop time of their condition; conditions of n_g such runs give Π n_g! orderings of the drop times,
    and the test needs ≥ ``C2_MIN_ORDERINGS`` (120 = 5!, e.g. 5 runs of one condition, so that p can go well
    below alpha), else "not run". False-positive rate at alpha 0.05: 4.4 % on a stationary, 4.6 % on a
    trending simulated null (10,000 experiments of 20 runs each); 5.3 % when each run has its own length with
    its GR trend and drop time scaled to it (drop times then not exchangeable); power with a GR event planted
    before every drop: 99.6 % (trending); ``python -m rnngeom.claims_sim``.
C3  TCR accelerates training. Seed-paired censored time-to-learn speed-up, λ>0 pooled vs λ=0, every
    learning rule except the freeze-in family (whose only learning signal is TCR, so λ=0 learns nothing).
C4  TCR facilitates attractor formation. As C3 on runs.tsv ``time_to_attractors`` = first checkpoint iteration
    at which n_stable ≥ the task's expected count (``rnngeom.constants.EXPECTED_STABLE``, flipflop: 8 = 2^3
    stable fixed points; tasks without a known count are left out), censored at last checkpoint + one
    checkpoint interval if never reached: "earlier" and "more often" in one number.
C5  TCR rescues strongly connected networks. As C3 restricted to gain > ``GAIN_THRESHOLD`` (1.0: the
    chaotic regime of the leaky / rank-one RNN). Censoring makes failure to learn count; success rates with
    and without TCR are reported in the text.
C6  TCR accelerates local learning. As C3 restricted to learning_rule "rflo".
C7  TCR helps LSTMs. As C3 restricted to arch "lstm" (the search phase is the bulk of time-to-learn).
C8  TCR promotes slow dynamics and ramping. Final checkpoint of each (non-diverged) run. Primary (the
    effect columns): seed-paired relative reduction of mean_speed, 1 − speed(λ>0)/speed(λ=0). Secondary:
    seed-paired difference of the ramping excess ramping_index − ramping_null (the index of
    autocorrelation-matched surrogate activity without a ramp: TCR raises autocorrelation, which alone raises
    the raw index). The claim has two parts, so the verdict is the weaker of the two parts' verdicts
    (supported only if both are; not supported if either is; no ramping_index / ramping_null column -> at
    most inconclusive).
C9  Benefit small in non-chaotic regimes. Effect = median speed-up (as C5) at gain > threshold minus median
    speed-up at gain ≤ threshold; CI from independent bootstraps of the two gain groups; p: one-sided
    Mann-Whitney U of the per-unit log ratios, high gain > low gain. Both groups must be seed-paired. The
    "near the solution" half (initial distance) is not measured.
C10 TCR can hurt. Per task: seed-paired relative slow-down ttl(λmax)/ttl(λ=0) − 1 at each stratum's largest
    λ (an a priori choice: the regime where a penalty on change bites hardest; picking the "best" λ after
    the fact would bias the test). The claim is existential ("a task or regime"), so each task is tested
    with Bonferroni correction over the k tasks tested (CI level 1 − alpha/k, p multiplied by k); supported
    if any task is, not supported if every task is, else inconclusive. Row = the deciding (or strongest)
    task; the median time-to-learn per λ of that task is in the text (the U-shape).
C11 Freeze-in collapses without control. Runs with λ>0 of learning_rule "freeze_in" vs "freeze_in_noise" /
    "freeze_in_control" (pooled), compared on what the controller does not set: the fixed-point structure
    at the final checkpoint. A run is collapsed if it holds at most one stable fixed point (n_stable ≤ 1: no
    memory can be stored; the saddle count, the noisiest, is left out). Effect = fraction collapsed
    (freeze_in) − fraction collapsed (controlled); bootstrap within arms; one-sided Fisher exact test. The
    final activity variance, which the λ(t) controller steers towards its target, is reported but decides
    nothing.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rnngeom.constants import EXPECTED_STABLE, GAIN_THRESHOLD, RUN_KEYS, TABLES, final_checkpoints
from rnngeom.io import as_bool, atomic_path, json_arg, write_tsv_atomic

CLAIM_TEXT = {
    "C1": "Abrupt learning: plateau, then a sudden drop",
    "C2": "Geometric restructuring (GR) precedes the loss drop",
    "C3": "TCR accelerates training",
    "C4": "TCR facilitates attractor formation",
    "C5": "TCR rescues strongly connected (chaotic) networks",
    "C6": "TCR accelerates local (bioplausible) learning",
    "C7": "TCR helps LSTMs in the search phase",
    "C8": "TCR promotes slow dynamics and ramping activity",
    "C9": "TCR's benefit is small near the solution / in non-chaotic regimes",
    "C10": "TCR can hurt when the task needs fast activity changes",
    "C11": "Freeze-in without control collapses to trivial fixed points",
}
CLAIM_IDS = list(CLAIM_TEXT)
COLUMNS = [
    "claim_id",
    "claim",
    "experiment",
    "n_runs",
    "statistic",
    "effect",
    "ci_low",
    "ci_high",
    "p_value",
    "verdict",
    "precondition",
    "control",
    "control_effect",
    "control_ci_low",
    "control_ci_high",
    "control_p_value",
    "control_verdict",
    "figure",
]
VERDICTS = ("supported", "not supported", "inconclusive", "not testable here", "not run")
CONTROL_KEYS = (
    "control",
    "control_effect",
    "control_ci_low",
    "control_ci_high",
    "control_p_value",
    "control_verdict",
)
CLAIM_SPEC_KEYS = {"experiment", "figure"}

MIN_N = 3  # fewer units (or runs per arm) than this: at most "inconclusive"
DECISIVE_N = 8  # at least this many: a CI below the minimal effect of interest counts as "not supported"
MIN_EFFECT = {  # minimal effect of interest, on each claim's effect scale (beyond the null)
    "C1": 0.0,
    "C2": 0.0,
    "C3": 0.10,
    "C4": 0.10,
    "C5": 0.10,
    "C6": 0.10,
    "C7": 0.10,
    "C8": 0.10,
    "C9": 0.10,
    "C10": 0.10,
    "C11": 0.20,
}
RAMPING_MIN_EFFECT = 0.05
STRATUM = ["task", "arch", "learning_rule", "gain"]
FREEZE_IN = "freeze_in"
FREEZE_IN_CONTROLLED = ("freeze_in_noise", "freeze_in_control")
LOCAL_RULES = ("rflo",)
LOG_FLOOR = 1e-12
C2_WINDOW = 3  # C2: the GR transitions into the last 3 checkpoints at or before t_drop are "before the drop"
C2_MIN_TRANSITIONS = 8  # C2: scored transitions a run needs (a window at its own and at other drop times)
C2_MIN_ORDERINGS = math.factorial(5)  # C2: orderings of drop times within conditions a permutation needs
C2_CONDITION = STRATUM + ["lambda_tcr", "n_iterations"]  # C2: runs whose drop times are exchangeable
RATIO_FLOOR = 1e-12  # C2: floor of gr_null_q in the calibrated ratio gr_score / gr_null_q
# Preconditions (fixed before the confirmation runs): the search-phase claims need λ=0 runs that search, a
# median search_fraction (rnngeom.analysis.loss_drop: share of the time to the escape spent on a flat
# plateau; 1 for a run that never escaped) of at least SEARCH_MIN_FRACTION; C6 needs RFLO to learn without
# TCR in at least RFLO_MIN_LEARNED of its λ=0 runs.
SEARCH_MIN_FRACTION = 0.5
SEARCH_CLAIMS = ("C1", "C2", "C3", "C4", "C5", "C7", "C9", "C10")
RFLO_MIN_LEARNED = 0.5


class NotRun(Exception):
    """The data a claim needs are absent; the message says what is missing."""


class NotTestable(Exception):
    """The claim's precondition fails in its own runs; the message gives the measured precondition."""


@dataclass
class Outcome:
    """One evaluated claim (the numeric part of a claim-table row)."""

    verdict: str
    statistic: str
    n_runs: int = 0
    effect: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    precondition: str = ""  # what must hold in the claim's runs for it to be tested, as measured
    control: dict = field(default_factory=dict)  # C2: the same test on the weight motion (CONTROL_KEYS)


# ----------------------------------------------------------------------------------------------------------
# Verdict
# ----------------------------------------------------------------------------------------------------------


def decide(
    effect,
    ci_low,
    ci_high,
    p_value,
    *,
    n: int,
    null: float = 0.0,
    min_effect: float = 0.0,
    alpha: float = 0.05,
) -> tuple[str, str]:
    """The verdict rule of the module docstring; returns (verdict, the reason in a few words).

    The effect is oriented so that values above ``null`` are the claimed direction; ``n`` is the size of the
    smallest group that went into it.
    """
    if any(v is None or not np.isfinite(v) for v in (effect, ci_low, ci_high, p_value)):
        return "inconclusive", "effect or CI undefined"
    if n < MIN_N:
        return "inconclusive", f"n = {n} < {MIN_N}"
    if ci_low > null and p_value < alpha:
        return "supported", f"CI above {null:g} and p < {alpha:g}"
    if ci_high < null:
        return "not supported", f"CI below {null:g} (opposite direction)"
    if n >= DECISIVE_N and ci_high < null + min_effect:
        return "not supported", f"n ≥ {DECISIVE_N} and CI below the minimal effect {null + min_effect:g}"
    return "inconclusive", "CI includes the null" if ci_low <= null else f"p ≥ {alpha:g}"


def weaker_verdict(a: str, b: str) -> str:
    """Both parts of a two-part claim must hold: "not supported" beats "inconclusive" beats "supported"."""
    order = ["not supported", "inconclusive", "supported"]
    return min(a, b, key=order.index)


# ----------------------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------------------


def percentile_ci(replicates: np.ndarray, alpha: float) -> tuple[float, float]:
    reps = np.asarray(replicates, dtype=float)
    reps = reps[np.isfinite(reps)]
    if len(reps) == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(reps, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def bootstrap_median(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Bootstrap replicates of the median of ``values`` (resampling with replacement)."""
    values = np.asarray(values, dtype=float)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    return np.median(values[idx], axis=1)


def proportion_test(k: int, n: int, alpha: float) -> tuple[float, float, float, float]:
    """(fraction, Clopper-Pearson CI low, high, one-sided exact binomial p against 0.5 for "greater")."""
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    ci = stats.binomtest(k, n, 0.5).proportion_ci(confidence_level=1 - alpha, method="exact")
    p = stats.binomtest(k, n, 0.5, alternative="greater").pvalue
    return k / n, float(ci.low), float(ci.high), float(p)


def signed_rank_greater(d: np.ndarray) -> float:
    """One-sided Wilcoxon signed-rank p-value for median(d) > 0; zero differences split ("zsplit")."""
    d = np.asarray(d, dtype=float)
    if len(d) == 0:
        return math.nan
    if np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="zsplit", alternative="greater").pvalue)


def mann_whitney_greater(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided Mann-Whitney U p-value for a stochastically greater than b."""
    if len(a) == 0 or len(b) == 0:
        return math.nan
    return float(stats.mannwhitneyu(a, b, alternative="greater").pvalue)


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


# ----------------------------------------------------------------------------------------------------------
# Per-run quantities
# ----------------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------------
# Claims
# ----------------------------------------------------------------------------------------------------------


@dataclass
class ClaimData:
    """The tables restricted to one claim's runs, plus the settings of the evaluation."""

    runs: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    spec: dict
    rng: np.random.Generator
    n_boot: int
    alpha: float

    def table(self, name: str) -> pd.DataFrame:
        df = self.tables.get(name)
        if df is None or df.empty or "run_id" not in df.columns:
            return pd.DataFrame(columns=["run_id"])
        return df[df["run_id"].isin(set(self.runs["run_id"]))]


def _not_freeze_in(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[~runs["learning_rule"].astype(str).str.startswith(FREEZE_IN)]


def _outcome_from(claim_id: str, comp: Comparison, what: str, alpha: float, extra: str = "") -> Outcome:
    verdict, why = comp.decide(MIN_EFFECT[claim_id], alpha)
    test = "Wilcoxon signed-rank" if comp.design == "paired" else "Mann-Whitney U"
    text = (
        f"{what}; {comp.describe()}; one-sided {test}; {100 * (1 - alpha):g}% bootstrap CI{extra}; "
        f"verdict: {why}"
    )
    return Outcome(verdict, text, comp.n_runs, comp.effect, comp.ci_low, comp.ci_high, comp.p_value)


def _learned_counts(runs: pd.DataFrame) -> str:
    ok = as_bool(runs["censored"]).eq(False)
    pos = runs["lambda_tcr"] > 0
    return (
        f"learned: λ>0 {int((ok & pos).sum())}/{int(pos.sum())}, "
        f"λ=0 {int((ok & ~pos).sum())}/{int((~pos).sum())}"
    )


def search_precondition(runs: pd.DataFrame) -> str:
    """The search-phase claims' precondition, measured on the λ=0 runs of ``runs``: their median
    search_fraction is at least SEARCH_MIN_FRACTION (they spend most of the time to their escape on a flat
    plateau, or never leave it). Returns the measurement in words; raises NotTestable (with it) when it
    fails, NotRun when there is nothing to measure it on."""
    if "search_fraction" not in runs.columns:
        raise NotRun("runs.tsv has no search_fraction column (no loss-drop analysis)")
    zero = runs[runs["lambda_tcr"] == 0]
    fraction = pd.to_numeric(zero["search_fraction"], errors="coerce").dropna()
    if fraction.empty:
        raise NotRun("no λ=0 run with a loss-drop analysis to measure the search phase on")
    left = int(as_bool(zero["escaped"]).eq(True).sum()) if "escaped" in zero.columns else 0
    median = float(fraction.median())
    text = (
        f"search phase in the λ=0 runs: median search fraction {median:.2f} (needs ≥ "
        f"{SEARCH_MIN_FRACTION:g}) over {len(fraction)} runs, {left} of which left their plateau"
    )
    if not median >= SEARCH_MIN_FRACTION:
        raise NotTestable(text)
    return text


def _speedup(claim_id: str, d: ClaimData, runs: pd.DataFrame, label: str) -> Outcome:
    precondition = search_precondition(runs) if claim_id in SEARCH_CLAIMS else ""
    runs = runs.assign(ttl=pd.to_numeric(runs["time_to_learn_censored"], errors="coerce"))
    comp = compare_tcr(
        runs,
        "ttl",
        better="lower",
        scale="ratio",
        rng=d.rng,
        n_boot=d.n_boot,
        alpha=d.alpha,
        label="time_to_learn",
    )
    what = (
        f"{label}median relative speed-up 1 − ttl(λ>0)/ttl(λ=0) of censored time-to-learn "
        "(runs.tsv time_to_learn_censored: unlearned/diverged = n_iterations + eval_every)"
    )
    used = runs[runs["run_id"].isin(comp.run_ids)]
    out = _outcome_from(claim_id, comp, what, d.alpha, f"; {_learned_counts(used)}")
    out.precondition = precondition
    return out


def claim_c1(d: ClaimData) -> Outcome:
    runs = d.runs
    if not {"abrupt", "escaped"} <= set(runs.columns):
        raise NotRun("runs.tsv has no abrupt / escaped columns (no loss-drop analysis)")
    precondition = search_precondition(runs)
    left = runs[as_bool(runs["escaped"]).eq(True) & ~as_bool(runs["diverged"]).eq(True)]
    if left.empty:
        raise NotTestable(f"{precondition}; no run left its plateau, so no drop to judge")
    abrupt = as_bool(left["abrupt"]).eq(True)
    k, n = int(abrupt.sum()), len(left)
    frac, lo, hi, p = proportion_test(k, n, d.alpha)
    verdict, why = decide(frac, lo, hi, p, n=n, null=0.5, alpha=d.alpha)
    plateau, ratio = (
        pd.to_numeric(left.loc[abrupt.to_numpy(), c], errors="coerce").median() if c in left else math.nan
        for c in ("plateau_length", "width_over_plateau")
    )
    groups = ", ".join(f"{a}: {int(g.sum())}/{len(g)}" for a, g in abrupt.groupby(left["arch"]))
    text = (
        f"fraction of the runs that left their plateau (escaped: the loss fell 0.5 decades below it) whose "
        f"escape was abrupt (a flat plateau, then an escape at most a quarter as long as it) = {k}/{n} "
        f"({groups}); Clopper-Pearson {100 * (1 - d.alpha):g}% CI; one-sided exact binomial test vs 0.5; "
        f"abrupt runs: median plateau {plateau:.4g} iterations, median escape width / plateau {ratio:.3g}; "
        f"{len(runs) - n} runs did not leave their plateau or diverged; verdict: {why}"
    )
    return Outcome(verdict, text, n, frac, lo, hi, p, precondition=precondition)


def gr_window_at(
    its: np.ndarray, ratios: np.ndarray, times: np.ndarray, window: int = C2_WINDOW
) -> np.ndarray:
    """C2, one run: S(t) = mean calibrated GR ratio over the ``window`` scored transitions ending at or before
    t, for each t of ``times`` (iterations); NaN where that window does not fit the series: t before the end
    of its ``window``-th transition, or more than one checkpoint interval after its last."""
    its, ratios, times = (np.asarray(a, dtype=float) for a in (its, ratios, times))
    if len(its) != len(ratios) or len(its) < window + 1:
        raise ValueError(f"a GR series needs ≥ {window + 1} transitions with iterations, got {len(ratios)}")
    means = np.convolve(ratios, np.ones(window) / window, mode="valid")  # [k]: window ending at k+window-1
    window_end = np.searchsorted(its, times, side="right") - 1  # last transition ending ≤ t
    fits = (window_end >= window - 1) & (times <= its[-1] + (its[-1] - its[-2]))
    return np.where(fits, means[np.clip(window_end - (window - 1), 0, len(means) - 1)], np.nan)


def gr_drop_ranks(
    series: list[tuple[np.ndarray, np.ndarray]], t_drop: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """C2, all runs: U[i, j] = u of run i's GR window at run j's drop time, j in i's group (else NaN).

    Row i holds S_i(t_drop_j) (``gr_window_at``) for every run j of its group whose drop time fits run i's
    series, mid-ranked among themselves and scaled to [0, 1]: U[i, i] = 1 means run i restructures more
    just before its own drop than just before any other run's drop. Rows with fewer than two fitting drop
    times are all NaN (nothing to rank against).
    """
    t_drop, groups = np.asarray(t_drop, dtype=float), np.asarray(groups)
    if not len(series) == len(t_drop) == len(groups):
        raise ValueError(f"{len(series)} series, {len(t_drop)} drop times and {len(groups)} groups differ")
    same_group = groups[:, None] == groups[None, :]
    values = np.array([gr_window_at(its, ratio, t_drop) for its, ratio in series]).reshape(len(t_drop), -1)
    values[~same_group] = np.nan
    ranks = np.full_like(values, np.nan)
    for row, u in zip(values, ranks):
        ok = np.isfinite(row)
        if ok.sum() >= 2:
            u[ok] = (stats.rankdata(row[ok]) - 1) / (ok.sum() - 1)  # (mid-rank − 1) / (m − 1)
    return ranks


def gr_drop_permutation_test(
    ranks: np.ndarray, groups: np.ndarray, rng: np.random.Generator, n_perm: int
) -> tuple[float, float]:
    """C2, all runs: (T = mean over runs of U[i, i], one-sided permutation p).

    Null (GR independent of the drop): the drop times are exchangeable across the runs of a group, so every
    reassignment of them within groups is as likely as the observed one. T_b = mean of U[i, π_b(i)] over
    the runs whose reassigned drop time fits their series; p = (1 + #{T_b ≥ T}) / (1 + n_perm). Exact for
    any trend of GR over training and any distribution of the drop times.
    """
    ranks, groups = np.asarray(ranks, dtype=float), np.asarray(groups)
    n = len(ranks)
    if not np.isfinite(np.diag(ranks)).all():
        raise ValueError("every run needs a rank at its own drop time (drop runs without one first)")
    _, codes = np.unique(groups, return_inverse=True)
    by_group = np.argsort(codes, kind="stable")
    shuffled = np.argsort(codes[by_group] + rng.random((n_perm, n)), axis=1)  # a permutation within groups
    assigned = np.empty_like(shuffled)
    assigned[:, by_group] = by_group[shuffled]  # assigned[b, i]: the run whose drop time run i gets
    null = np.nanmean(ranks[np.arange(n), assigned], axis=1)
    t_obs = float(np.diag(ranks).mean())
    return t_obs, float((1 + np.sum(null >= t_obs - 1e-12)) / (1 + n_perm))


def gr_drop_test(
    series: list[tuple[np.ndarray, np.ndarray]],
    t_drop: np.ndarray,
    groups: np.ndarray,
    rng: np.random.Generator,
    n_perm: int,
) -> tuple[np.ndarray, float, np.ndarray]:
    """C2: (u at the own drop time per used run, permutation p, mask of the runs used) on runs with a drop.

    A run is used when its own pre-drop window fits its series and at least one other drop time of its group
    fits it too (ranks are recomputed without the runs left out, until none is). Groups of n_g used runs
    give Π n_g! orderings of the drop times; fewer than ``C2_MIN_ORDERINGS`` (5! = 120: p could not go much
    below alpha): p = NaN.
    """
    used = np.isfinite([gr_window_at(its, ratio, [t])[0] for (its, ratio), t in zip(series, t_drop)])
    t_drop, groups = np.asarray(t_drop, dtype=float), np.asarray(groups)
    while True:
        idx = np.flatnonzero(used)
        if len(idx) < 2:
            return np.full(len(idx), np.nan), math.nan, used
        ranks = gr_drop_ranks([series[i] for i in idx], t_drop[idx], groups[idx])
        ranked = np.isfinite(np.diag(ranks))
        if ranked.all():
            break
        used[idx[~ranked]] = False
    _, group_sizes = np.unique(groups[idx], return_counts=True)
    if sum(math.lgamma(k + 1) for k in group_sizes) < math.log(C2_MIN_ORDERINGS) - 1e-9:
        return np.diag(ranks), math.nan, used
    _, p = gr_drop_permutation_test(ranks, groups[idx], rng, n_perm)
    return np.diag(ranks), p, used


def checkpoint_series(checkpoints: pd.DataFrame, value: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per run: (iterations, values) of its scored checkpoint transitions, for ``value`` "gr_ratio" (the
    calibrated GR ratio gr_score / gr_null_q) or "param_change" (‖θ_k − θ_{k−1}‖, the weight motion)."""
    if value == "gr_ratio":
        score = pd.to_numeric(checkpoints["gr_score"], errors="coerce")
        null_q = pd.to_numeric(checkpoints["gr_null_q"], errors="coerce")
        values = score / np.maximum(null_q, RATIO_FLOOR)
    elif value == "param_change":
        values = pd.to_numeric(checkpoints["param_change"], errors="coerce")
    else:
        raise ValueError(f"unknown checkpoint series {value!r}")
    ck = checkpoints.assign(_value=values)
    ck = ck[np.isfinite(ck["_value"])]
    return {
        run_id: (c["iteration"].to_numpy(float), c["_value"].to_numpy(float))
        for run_id, c in ck.sort_values(["run_id", "iteration"], kind="stable").groupby("run_id")
    }


def gr_series(checkpoints: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per run: (iterations, calibrated ratio gr_score / gr_null_q) of its scored checkpoint transitions."""
    return checkpoint_series(checkpoints, "gr_ratio")


@dataclass
class Alignment:
    """C2's between-run test of one checkpoint series at the runs' onsets (see ``aligned_at_onset``)."""

    run_ids: list  # the runs used
    u: np.ndarray  # per used run: rank of its window at its own onset among the other onsets of its condition
    p_value: float
    effect: float  # mean u
    ci_low: float
    ci_high: float

    @property
    def n(self) -> int:
        return len(self.run_ids)


def aligned_at_onset(series: dict, runs: pd.DataFrame, groups: np.ndarray, d: ClaimData) -> Alignment | None:
    """The between-run permutation test (``gr_drop_test``) of ``series`` at the runs' t_onset; None when the
    used runs give fewer than C2_MIN_ORDERINGS orderings of the onsets within their conditions."""
    observed, p, used = gr_drop_test(
        [series[r] for r in runs["run_id"]], runs["t_onset"].to_numpy(float), groups, d.rng, d.n_boot
    )
    if not np.isfinite(p):
        return None
    n = int(used.sum())
    lo, hi = percentile_ci(observed[d.rng.integers(0, n, size=(d.n_boot, n))].mean(axis=1), d.alpha)
    ids = list(runs["run_id"][used])
    return Alignment(ids, observed, p, float(observed.mean()), lo, hi)


def claim_c2(d: ClaimData) -> Outcome:
    runs = d.runs
    ck = d.table("checkpoints")
    if not {"t_onset", "abrupt"} <= set(runs.columns):
        raise NotRun("runs.tsv has no t_onset / abrupt columns (no loss-drop analysis)")
    if ck.empty or not {"gr_score", "gr_null_q"} <= set(ck.columns):
        raise NotRun("no calibrated GR scores (checkpoints.tsv gr_score, gr_null_q) for these runs")
    gr = gr_series(ck)
    motion = checkpoint_series(ck, "param_change") if "param_change" in ck.columns else {}
    on_plateau = runs[as_bool(runs["abrupt"]).eq(True)].assign(
        t_onset=lambda r: pd.to_numeric(r["t_onset"], errors="coerce")
    )
    scored = on_plateau[
        [r in gr and len(gr[r][1]) >= C2_MIN_TRANSITIONS and r in motion for r in on_plateau["run_id"]]
    ]
    strata = [c for c in C2_CONDITION if c in scored.columns]
    precondition = (
        f"abrupt drops (a flat plateau, then a fast escape) in {len(on_plateau)} of {len(runs)} runs, "
        f"{len(scored)} of them with ≥ {C2_MIN_TRANSITIONS} scored transitions of GR and weight motion; "
        f"the permutation needs ≥ {C2_MIN_ORDERINGS} orderings of their onsets within conditions "
        f"({'/'.join(strata)}), e.g. 5 runs of one condition"
    )
    if scored.empty:
        raise NotTestable(precondition)
    groups = scored[strata].astype(str).agg("/".join, axis=1).to_numpy()
    main = aligned_at_onset(gr, scored, groups, d)
    if main is None:
        raise NotTestable(precondition)
    verdict, why = decide(
        main.effect, main.ci_low, main.ci_high, main.p_value, n=main.n, null=0.5, alpha=d.alpha
    )

    # The control: the same test on the plain weight motion between the same checkpoints, on the same runs.
    used = scored[scored["run_id"].isin(main.run_ids)]
    control = aligned_at_onset(motion, used, groups[scored["run_id"].isin(main.run_ids).to_numpy()], d)
    control_fields, comparison = {}, "control not testable (too few runs with a weight-motion series)"
    if control is not None:
        c_verdict, c_why = decide(
            control.effect,
            control.ci_low,
            control.ci_high,
            control.p_value,
            n=control.n,
            null=0.5,
            alpha=d.alpha,
        )
        control_fields = {
            "control": "‖Δθ‖ (weight motion) at the onset, same test",
            "control_effect": control.effect,
            "control_ci_low": control.ci_low,
            "control_ci_high": control.ci_high,
            "control_p_value": control.p_value,
            "control_verdict": c_verdict,
        }
        # GR vs weight motion, run by run: does restructuring lead the drop more than the weights' motion?
        u_gr = dict(zip(main.run_ids, main.u))
        diff = np.array([u_gr[r] - u for r, u in zip(control.run_ids, control.u) if r in u_gr])
        lo, hi = percentile_ci(
            diff[d.rng.integers(0, len(diff), size=(d.n_boot, len(diff)))].mean(axis=1), d.alpha
        )
        comparison = (
            f"control ‖Δθ‖: mean u {control.effect:.3g} [{control.ci_low:.3g}, {control.ci_high:.3g}], "
            f"p = {control.p_value:.3g} -> {c_verdict} ({c_why}); GR minus control, per run: mean "
            f"{diff.mean():.3g} [{lo:.3g}, {hi:.3g}], one-sided Wilcoxon signed-rank p = "
            f"{signed_rank_greater(diff):.3g} ({len(diff)} runs)"
        )
    events_before = 0
    for run_id, t in zip(used["run_id"], used["t_onset"]):
        its, ratio = gr[run_id]
        window_end = int(np.searchsorted(its, t, side="right"))  # one past the last transition ending ≤ t
        events_before += bool((ratio[window_end - C2_WINDOW : window_end] > 1).any())
    text = (
        f"GR on the plateau, aligned on the onset of the drop (t_onset: the loss has left its plateau "
        f"band), between runs: per run, S(t) = mean calibrated GR ratio gr_score/gr_null_q over the "
        f"{C2_WINDOW} checkpoint transitions ending at or before t; S at the run's own t_onset ranked among "
        f"S at the t_onset of the other runs of its condition ({'/'.join(strata)}; u = 0..1, 0.5 = chance); "
        f"effect = mean u, {main.n} runs with an abrupt drop; {100 * (1 - d.alpha):g}% bootstrap CI over "
        f"runs; one-sided permutation test (onsets reassigned across runs within conditions, {d.n_boot} "
        f"permutations); {events_before}/{main.n} runs have a calibrated event (ratio > 1) in the window; "
        f"{comparison}; verdict (GR): {why}"
    )
    return Outcome(
        verdict,
        text,
        main.n,
        main.effect,
        main.ci_low,
        main.ci_high,
        main.p_value,
        precondition=precondition,
        control=control_fields,
    )


def claim_c3(d: ClaimData) -> Outcome:
    runs = _not_freeze_in(d.runs)
    if runs.empty:
        raise NotRun("no runs outside the freeze-in rules")
    return _speedup("C3", d, runs, "")


def claim_c4(d: ClaimData) -> Outcome:
    runs = _not_freeze_in(d.runs)
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
    out = _outcome_from("C4", comp, what, d.alpha, rates)
    out.precondition = precondition
    return out


def claim_c5(d: ClaimData) -> Outcome:
    g = GAIN_THRESHOLD
    runs = _not_freeze_in(d.runs)
    runs = runs[runs["gain"].astype(float) > g]
    if runs.empty:
        raise NotRun(f"needs runs at gain > {g:g}; found gains {sorted(d.runs['gain'].unique())}")
    return _speedup("C5", d, runs, f"gain > {g:g}: ")


def claim_c6(d: ClaimData) -> Outcome:
    runs = d.runs[d.runs["learning_rule"].isin(LOCAL_RULES)]
    if runs.empty:
        raise NotRun(f"needs runs with a local learning rule {LOCAL_RULES}")
    zero = runs[runs["lambda_tcr"] == 0]
    learned = int(as_bool(zero["censored"]).eq(False).sum())
    precondition = (
        f"the local rule learns without TCR: {learned} of {len(zero)} λ=0 runs learned (needs ≥ "
        f"{RFLO_MIN_LEARNED:.0%})"
    )
    if zero.empty or learned < RFLO_MIN_LEARNED * len(zero):
        raise NotTestable(precondition)
    out = _speedup("C6", d, runs, "local rules: ")
    out.precondition = precondition
    return out


def claim_c7(d: ClaimData) -> Outcome:
    runs = _not_freeze_in(d.runs[d.runs["arch"] == "lstm"])
    if runs.empty:
        raise NotRun("needs LSTM runs")
    return _speedup("C7", d, runs, "LSTM: ")


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


def claim_c9(d: ClaimData) -> Outcome:
    g = GAIN_THRESHOLD
    runs = _not_freeze_in(d.runs)
    runs = runs.assign(ttl=pd.to_numeric(runs["time_to_learn_censored"], errors="coerce"))
    high, low = runs[runs["gain"].astype(float) > g], runs[runs["gain"].astype(float) <= g]
    if high.empty or low.empty:
        raise NotRun(
            f"needs runs at gain ≤ {g:g} and gain > {g:g}; found gains {sorted(runs['gain'].unique())}"
        )
    precondition = search_precondition(runs)
    kw = dict(better="lower", scale="ratio", rng=d.rng, n_boot=d.n_boot, alpha=d.alpha, label="time_to_learn")
    try:
        c_high = compare_tcr(high, "ttl", **kw)
        c_low = compare_tcr(low, "ttl", **kw)
    except NotRun as err:
        raise NotRun(f"at each gain level (≤ {g:g} and > {g:g}): {err}") from None
    if c_high.design != "paired" or c_low.design != "paired":
        return Outcome(
            "inconclusive",
            f"needs ≥ {MIN_N} seed-paired λ=0/λ>0 units at both gain levels "
            f"(gain > {g:g}: {c_high.n}, ≤ {g:g}: {c_low.n})",
            c_high.n_runs + c_low.n_runs,
            precondition=precondition,
        )
    effect = c_high.effect - c_low.effect
    lo, hi = percentile_ci(c_high.replicates - c_low.replicates, d.alpha)
    p = mann_whitney_greater(c_high.unit_scores, c_low.unit_scores)
    n = min(c_high.n, c_low.n)
    verdict, why = decide(effect, lo, hi, p, n=n, min_effect=MIN_EFFECT["C9"], alpha=d.alpha)
    text = (
        f"median censored time-to-learn speed-up at gain > {g:g} ({c_high.effect:.3g}, n = {c_high.n}) "
        f"minus at gain ≤ {g:g} ({c_low.effect:.3g}, n = {c_low.n}); seed-paired, λ>0 pooled; "
        f"{100 * (1 - d.alpha):g}% CI from independent bootstraps; one-sided Mann-Whitney U on per-unit "
        f"log ratios; initial distance to the solution not measured; verdict: {why}"
    )
    return Outcome(verdict, text, c_high.n_runs + c_low.n_runs, effect, lo, hi, p, precondition=precondition)


def claim_c10(d: ClaimData) -> Outcome:
    runs = _not_freeze_in(d.runs)
    runs = runs.assign(ttl=pd.to_numeric(runs["time_to_learn_censored"], errors="coerce"))
    per_task, reasons, preconditions, untestable = {}, [], [], []
    for task, sub in runs.groupby("task"):
        try:
            preconditions.append(f"{task}: {search_precondition(sub)}")
        except NotTestable as err:
            untestable.append(f"{task}: {err}")
            continue
        try:
            per_task[task] = (
                sub,
                compare_tcr(
                    sub,
                    "ttl",
                    better="higher",
                    scale="ratio",
                    rng=d.rng,
                    n_boot=d.n_boot,
                    alpha=d.alpha,
                    treated="largest",
                    label="time_to_learn",
                ),
            )
        except NotRun as err:
            reasons.append(f"{task}: {err}")
    if not per_task:
        if untestable and not reasons:
            raise NotTestable("; ".join(untestable))
        raise NotRun("; ".join(reasons + untestable) or "no runs")
    k = len(per_task)
    a_k = d.alpha / k
    results = {}
    for task, (_sub, comp) in per_task.items():
        lo, hi = percentile_ci(comp.replicates, a_k)
        p = min(1.0, comp.p_value * k)  # Bonferroni-adjusted, compared with alpha
        verdict, why = decide(comp.effect, lo, hi, p, n=comp.n, min_effect=MIN_EFFECT["C10"], alpha=d.alpha)
        results[task] = (verdict, why, lo, hi, p)
    verdicts = [r[0] for r in results.values()]
    overall = (
        "supported"
        if "supported" in verdicts
        else "not supported"
        if all(v == "not supported" for v in verdicts)
        else "inconclusive"
    )
    candidates = [t for t in results if results[t][0] == overall] or list(results)
    task = min(candidates, key=lambda t: (np.nan_to_num(results[t][4], nan=2.0), -per_task[t][1].effect))
    sub, comp = per_task[task]
    _, why, lo, hi, p = results[task]
    # Every λ (intermediate ones too: the U-shape) of the strata that entered the comparison.
    strata = sub.set_index(STRATUM).index
    in_used_strata = strata.isin(strata[sub["run_id"].isin(comp.run_ids).to_numpy()])
    medians = sub[in_used_strata].groupby("lambda_tcr")["ttl"].median()
    shape = ", ".join(f"λ={lam:g}: {v:.4g}" for lam, v in medians.items())
    others = "; ".join(f"{t}: {results[t][0]}" for t in results if t != task)
    text = (
        f"per task, median relative slow-down ttl(largest λ)/ttl(λ=0) − 1 of censored time-to-learn; "
        f"shown: {task} ({comp.describe()}); Bonferroni over {k} task(s): {100 * (1 - a_k):.3g}% bootstrap "
        f"CI, p × {k}; one-sided {'Wilcoxon signed-rank' if comp.design == 'paired' else 'Mann-Whitney U'}; "
        f"median ttl by λ: {shape}"
        + (f"; other tasks: {others}" if others else "")
        + (f"; not comparable: {'; '.join(reasons)}" if reasons else "")
        + (f"; not testable here (no search phase): {'; '.join(untestable)}" if untestable else "")
        + f"; verdict: {why}"
    )
    n_runs = int(sum(c.n_runs for _, c in per_task.values()))
    return Outcome(overall, text, n_runs, comp.effect, lo, hi, p, precondition="; ".join(preconditions))


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


CLAIM_FUNCTIONS: dict[str, Callable[[ClaimData], Outcome]] = {
    "C1": claim_c1,
    "C2": claim_c2,
    "C3": claim_c3,
    "C4": claim_c4,
    "C5": claim_c5,
    "C6": claim_c6,
    "C7": claim_c7,
    "C8": claim_c8,
    "C9": claim_c9,
    "C10": claim_c10,
    "C11": claim_c11,
}


# ----------------------------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------------------------


def _names(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def validate_inputs(tables: dict, experiments: dict, claims: dict) -> None:
    """Raise ValueError naming the first malformed input."""
    if not isinstance(tables, dict) or not isinstance(tables.get("runs"), pd.DataFrame):
        raise ValueError("tables must hold a 'runs' DataFrame")
    needed = {
        "run_id",
        *RUN_KEYS,
        "n_iterations",
        "time_to_learn_censored",
        "censored",
        "learned",
        "diverged",
    }
    missing = sorted(needed - set(tables["runs"].columns))
    if missing and len(tables["runs"]):
        raise ValueError(f"runs table lacks column(s) {missing}")
    if not isinstance(experiments, dict) or not all(
        isinstance(k, str) and isinstance(v, (list, tuple)) and all(isinstance(r, str) for r in v)
        for k, v in experiments.items()
    ):
        raise ValueError("experiments must map experiment name -> list of run_id strings")
    if not isinstance(claims, dict):
        raise ValueError("claims must map claim id -> {experiment, figure}")
    for cid, spec in claims.items():
        if cid not in CLAIM_TEXT:
            raise ValueError(f"unknown claim id {cid!r}; known: {CLAIM_IDS}")
        if not isinstance(spec, dict):
            raise ValueError(f"claim {cid}: expected an object {{experiment, figure}}, got {spec!r}")
        unknown = sorted(set(spec) - CLAIM_SPEC_KEYS)
        if unknown:
            raise ValueError(f"claim {cid}: unknown key(s) {unknown}; allowed: {sorted(CLAIM_SPEC_KEYS)}")
        exp = spec.get("experiment")
        if exp is not None and not (isinstance(exp, str) or all(isinstance(e, str) for e in exp)):
            raise ValueError(f"claim {cid}: experiment must be a name or a list of names, got {exp!r}")


def _prepare_runs(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.drop_duplicates("run_id").copy()
    for col in ("lambda_tcr", "gain", "n_iterations"):
        runs[col] = pd.to_numeric(runs[col], errors="coerce")
    return runs


def evaluate_claims(
    tables: dict[str, pd.DataFrame],
    experiments: dict[str, list[str]],
    claims: dict[str, dict],
    *,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """The claim table (``COLUMNS``), one row per claim C1..C11 in order; see the module docstring."""
    validate_inputs(tables, experiments, claims)
    runs_all = _prepare_runs(tables["runs"]) if len(tables["runs"]) else tables["runs"]
    rows = []
    for number, cid in enumerate(CLAIM_IDS, start=1):
        spec = claims.get(cid)
        names = _names(spec.get("experiment")) if spec else []
        row = {
            "claim_id": cid,
            "claim": CLAIM_TEXT[cid],
            "experiment": ", ".join(names),
            "figure": ", ".join(_names(spec.get("figure"))) if spec else "",
        }
        try:
            if not names:
                raise NotRun(f"no experiment configured for {cid}")
            unknown = [n for n in names if n not in experiments]
            if unknown:
                raise NotRun(f"experiment(s) {unknown} not in the config")
            ids = {r for n in names for r in experiments[n]}
            runs = runs_all[runs_all["run_id"].isin(ids)] if len(runs_all) else runs_all
            if runs.empty:
                raise NotRun(f"no runs of {', '.join(names)} in runs.tsv")
            data = ClaimData(runs, tables, spec, np.random.default_rng([seed, number]), n_boot, alpha)
            out = CLAIM_FUNCTIONS[cid](data)
        except NotRun as err:
            out = Outcome("not run", str(err))
        except NotTestable as err:
            out = Outcome(
                "not testable here",
                f"the claim's precondition fails in its own runs: {err}",
                len(runs),
                precondition=str(err),
            )
        row.update(
            n_runs=out.n_runs,
            statistic=out.statistic,
            effect=out.effect,
            ci_low=out.ci_low,
            ci_high=out.ci_high,
            p_value=out.p_value,
            verdict=out.verdict,
            precondition=out.precondition,
            **{
                k: out.control.get(k, "" if k in ("control", "control_verdict") else math.nan)
                for k in CONTROL_KEYS
            },
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _fmt(v) -> str:
    return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3g}"


def _text(v) -> str:
    """A text cell; missing (None/NaN, as read back from a TSV) is empty."""
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _with_ci(effect, low, high) -> str:
    text = _fmt(effect)
    return f"{text} [{_fmt(low)}, {_fmt(high)}]" if text and _fmt(low) else text


def render_markdown(df: pd.DataFrame) -> str:
    """The claim table as Markdown: verdict, effect [CI], p, runs, where to look, and how it was computed."""
    header = (
        "| Claim | | Verdict | Effect [CI] | p | Runs | Precondition (measured) | Control | Experiment | "
        "Figure | Statistic |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        effect = _with_ci(r.effect, r.ci_low, r.ci_high)
        control = _text(r.control_verdict)
        if control:
            ci = _with_ci(r.control_effect, r.control_ci_low, r.control_ci_high)
            control = f"{_text(r.control)}: **{control}**, {ci}, p {_fmt(r.control_p_value)}"
        cells = [
            r.claim_id,
            r.claim,
            f"**{r.verdict}**",
            effect,
            _fmt(r.p_value),
            str(int(r.n_runs)),
            r.precondition,
            control,
            r.experiment,
            r.figure,
            r.statistic,
        ]
        lines.append("| " + " | ".join(_text(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------


def read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """The aggregate tables in ``folder``; runs.tsv is required, the others may be absent (empty)."""
    if not folder.is_dir():
        raise ValueError(f"--tables: {folder} is not a directory")
    if not (folder / "runs.tsv").is_file():
        raise ValueError(f"--tables: {folder / 'runs.tsv'} not found")
    tables = {}
    for name in TABLES:
        path = folder / f"{name}.tsv"
        try:
            tables[name] = pd.read_csv(path, sep="\t") if path.is_file() else pd.DataFrame(columns=["run_id"])
        except pd.errors.EmptyDataError:
            tables[name] = pd.DataFrame(columns=["run_id"])
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise ValueError(f"--tables: cannot read {path}: {err}") from None
    return tables


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate the paper's claims C1..C11 from the aggregate tables")
    ap.add_argument("--tables", required=True, help="folder with runs.tsv, metrics.tsv, checkpoints.tsv, ...")
    ap.add_argument("--experiments", required=True, help="JSON {experiment: [run_id, ...]} or @file")
    ap.add_argument("--claims", required=True, help="JSON {claim id: {experiment, figure}} or @file")
    ap.add_argument("--out", required=True, help="claim table (TSV)")
    ap.add_argument("--markdown", help="the same table as Markdown")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    try:
        if a.n_boot < 1 or not 0 < a.alpha < 1:
            raise ValueError("--n-boot must be ≥ 1 and --alpha in (0, 1)")
        tables = read_tables(Path(a.tables))
        experiments = json_arg(a.experiments, "--experiments")
        claims = json_arg(a.claims, "--claims")
        table = evaluate_claims(tables, experiments, claims, n_boot=a.n_boot, alpha=a.alpha, seed=a.seed)
    except ValueError as err:
        print(f"rnngeom.claims: error: {err}", file=sys.stderr)
        return 2
    write_tsv_atomic(a.out, table)
    if a.markdown:
        with atomic_path(a.markdown) as tmp:
            tmp.write_text(render_markdown(table))
    counts = table["verdict"].value_counts()
    print("claims: " + ", ".join(f"{v} {int(counts.get(v, 0))}" for v in VERDICTS), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
