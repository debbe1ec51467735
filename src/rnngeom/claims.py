"""The claim table: one row per claim C1..C11 of the paper, with an effect size, a CI, a p-value and a verdict.

    python -m rnngeom.claims --tables results/tables --experiments @experiments.json --claims @claims.json \\
        --out results/claims.tsv --markdown results/claims.md

Inputs are the tidy tables of ``rnngeom.aggregate`` (runs, metrics, checkpoints, fixed_points, events), a map
experiment -> run_ids, and a map claim id -> {"experiment": name or [names], "figure": name or [names]} (the
config's claim section; optional keys: ``expected_stable`` {task: count} for C4, ``gain_threshold`` for C5/C9).
Every statistic below was fixed before looking at any result; none is tuned to the data.

Output columns: claim_id, claim, experiment, n_runs, statistic, effect, ci_low, ci_high, p_value, verdict,
figure. There are always 11 rows, in order C1..C11. ``statistic`` says in words what was computed (or, for
"not run", why nothing could be).

Shared conventions
------------------
* Runs of a claim = the runs of its experiment(s) present in runs.tsv (the union, each run once).
* Matched conditions ("stratum") = same task, arch, learning_rule and gain. λ>0 runs are compared only with
  λ=0 runs of their own stratum.
* Censoring: time_to_learn of a run that never reached the accuracy threshold, or diverged, is set to
  ``n_iterations + eval step`` (eval step = the run's logging interval in metrics.tsv; 1 if unknown): later
  than any run that learned, i.e. the worst rank. Times are clipped below at one eval step so ratios are finite.
* TCR comparisons (C3-C8, C10) are **seed-paired**: a unit is a (stratum, seed) that has a λ=0 run and at
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
  Proportions (C1, C2) use the exact Clopper-Pearson interval instead.
* Every effect is oriented so that a **positive effect (or a proportion above 0.5) is the claimed direction**.

Verdict rule (``decide``)
-------------------------
With n = the size of the smallest group (units, or runs per arm), null = 0 (0.5 for proportions), and a
minimal effect of interest m per claim (``MIN_EFFECT``: 0.10 relative speed-up / slow-down / reduction, 0.10
difference of speed-ups, 0.05 ramping index, 0.5 decades of activity variance, 0 above 0.5 for proportions):

1. "inconclusive" if n < 3 (``MIN_N``) or the effect/CI/p is undefined;
2. "supported" if the CI lies entirely above the null AND p < alpha;
3. "not supported" if the CI lies entirely below the null (the opposite direction), or if n ≥ 8
   (``DECISIVE_N``) and the whole CI lies below null + m (enough data to rule out any effect worth claiming);
4. "inconclusive" otherwise.
"not run": the claim has no experiment in the config, its experiment has no runs in the tables, or the runs
lack the conditions it needs (e.g. only λ=0, no rflo runs, no checkpoint analysis, no activity_var column).

Per claim
---------
C1  abrupt learning. Learned (not diverged) runs with an analysed loss curve; effect = fraction with
    has_drop; Clopper-Pearson CI; one-sided exact binomial test against 0.5 (null: a detected plateau-then-
    drop is no more common than not; the claim is that it is the typical course of training). Pooled over
    tasks, archs and λ. Median plateau_length and drop_sharpness are reported in the text.
C2  GR precedes the drop. Runs with both t_GR and t_drop; effect = fraction with t_GR < t_drop (strictly:
    a tie counts against the claim); Clopper-Pearson CI; one-sided sign (binomial) test against 0.5.
C3  TCR accelerates training. Seed-paired censored time-to-learn speed-up, λ>0 pooled vs λ=0, every
    learning rule except the freeze-in family (whose only learning signal is TCR, so λ=0 learns nothing).
C4  TCR facilitates attractor formation. As C3 on the time to attractors = first checkpoint iteration at
    which n_stable ≥ the task's expected count (flipflop: 8 = 2^3 stable fixed points; other tasks have no
    known count and are left out unless ``expected_stable`` gives one), censored at last checkpoint + one
    checkpoint interval if never reached: "earlier" and "more often" in one number.
C5  TCR rescues strongly connected networks. As C3 restricted to gain > ``gain_threshold`` (1.0: the
    chaotic regime of the leaky / rank-one RNN). Censoring makes failure to learn count; success rates with
    and without TCR are reported in the text.
C6  TCR accelerates local learning. As C3 restricted to learning_rule "rflo" (or "eprop").
C7  TCR helps LSTMs. As C3 restricted to arch "lstm" (the search phase is the bulk of time-to-learn).
C8  TCR promotes slow dynamics and ramping. Final checkpoint of each (non-diverged) run. Primary (the
    effect columns): seed-paired relative reduction of mean_speed, 1 − speed(λ>0)/speed(λ=0). Secondary:
    seed-paired difference of ramping_index. The claim has two parts, so the verdict is the weaker of the
    two parts' verdicts (supported only if both are; not supported if either is; no ramping_index column ->
    at most inconclusive).
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
    "freeze_in_control" (pooled); value = the run's last finite activity_var in metrics.tsv, in log10
    (floored at 1e-12). Effect = decades by which freeze_in is lower: median(log10 var, controlled) −
    median(log10 var, freeze_in); bootstrap within groups; one-sided Mann-Whitney U. The fraction of runs
    whose final checkpoint holds a single fixed point (and it stable: the trivial attractor) is reported.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from rnngeom.io import atomic_path, json_arg, write_tsv_atomic

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
COLUMNS = ["claim_id", "claim", "experiment", "n_runs", "statistic", "effect", "ci_low", "ci_high", "p_value",
           "verdict", "figure"]  # fmt: skip
VERDICTS = ("supported", "not supported", "inconclusive", "not run")
TABLE_NAMES = ("runs", "metrics", "checkpoints", "fixed_points", "events")
CLAIM_SPEC_KEYS = {"experiment", "figure", "expected_stable", "gain_threshold"}

MIN_N = 3  # fewer units (or runs per arm) than this: at most "inconclusive"
DECISIVE_N = 8  # at least this many: a CI below the minimal effect of interest counts as "not supported"
MIN_EFFECT = {  # minimal effect of interest, on each claim's effect scale (beyond the null)
    "C1": 0.0, "C2": 0.0, "C3": 0.10, "C4": 0.10, "C5": 0.10, "C6": 0.10, "C7": 0.10, "C8": 0.10,
    "C9": 0.10, "C10": 0.10, "C11": 0.5,
}  # fmt: skip
RAMPING_MIN_EFFECT = 0.05
STRATUM = ["task", "arch", "learning_rule", "gain"]
FREEZE_IN = "freeze_in"
FREEZE_IN_CONTROLLED = ("freeze_in_noise", "freeze_in_control")
LOCAL_RULES = ("rflo", "eprop")
EXPECTED_STABLE = {"flipflop": 8}  # 3-bit flip-flop: 2^3 stable fixed points
GAIN_THRESHOLD = 1.0  # gain > this: strongly connected / chaotic (leaky and rank-one RNNs)
LOG_FLOOR = 1e-12


class NotRun(Exception):
    """The data a claim needs are absent; the message says what is missing."""


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


# ----------------------------------------------------------------------------------------------------------
# Verdict
# ----------------------------------------------------------------------------------------------------------


def decide(effect, ci_low, ci_high, p_value, *, n: int, null: float = 0.0, min_effect: float = 0.0,
           alpha: float = 0.05) -> tuple[str, str]:  # fmt: skip
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


def compare_tcr(runs: pd.DataFrame, value: str, *, better: str, scale: str, rng: np.random.Generator,
                n_boot: int, alpha: float, treated: str = "pooled",
                label: str | None = None) -> Comparison:  # fmt: skip
    """Compare ``value`` between λ>0 and λ=0 runs of the same stratum (see the module docstring).

    better: "lower" or "higher" (the claimed direction); scale: "ratio" (effect 1 − x₊/x₀, or x₊/x₀ − 1
    when higher is claimed) or "difference" (x₊ − x₀, or x₀ − x₊ when lower is claimed).
    treated: "pooled" (every λ>0 run) or "largest" (each stratum's largest λ only). label: ``value`` in messages.
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
        raise NotRun("needs λ=0 and λ>0 runs in matched conditions (same task/arch/rule/gain) with a finite "
                     f"{label or value}; found λ ∈ {{{found}}}")  # fmt: skip
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
        return Comparison(float(np.median(effects)), lo, hi, signed_rank_greater(scores), len(per_unit),
                          len(used), "paired", reps, scores, lambdas, set(used["run_id"]))  # fmt: skip

    # Unpaired fallback: normalise within each stratum by its λ=0 median, pool, compare medians.
    groups = [g for _, g in df.groupby(STRATUM, dropna=False)]
    cells = [(g.loc[g["arm"] == "t", value].to_numpy(float), g.loc[g["arm"] == "c", value].to_numpy(float))
             for g in groups]  # fmt: skip

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
        resampled = [(xt[rng.integers(0, len(xt), len(xt))], xc[rng.integers(0, len(xc), len(xc))])
                     for xt, xc in cells]  # fmt: skip
        reps[b] = pooled_effect(resampled)[0]
    lo, hi = percentile_ci(reps, alpha)
    if scale == "ratio":
        t_norm, c_norm = np.log(t_norm), np.log(c_norm)
    p = mann_whitney_greater(sign * t_norm, sign * c_norm)
    n = int(min(len(t_norm), len(c_norm)))
    return Comparison(float(effect), lo, hi, p, n, len(df), "unpaired", reps, np.array([]), lambdas,
                      set(df["run_id"]))


# ----------------------------------------------------------------------------------------------------------
# Per-run quantities
# ----------------------------------------------------------------------------------------------------------


def as_bool(series: pd.Series) -> pd.Series:
    """True/False from bools, 0/1 or the strings "True"/"False"; missing (NaN, "") stays NaN (object)."""
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}

    def one(v):
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return np.nan
        return mapping.get(str(v).strip().lower(), np.nan)

    return series.map(one).astype(object)


def eval_steps(metrics: pd.DataFrame) -> dict[str, float]:
    """Each run's logging interval (median gap between evaluated iterations) from metrics.tsv."""
    if metrics is None or metrics.empty or "iteration" not in metrics.columns:
        return {}
    out = {}
    for run_id, its in metrics.groupby("run_id")["iteration"]:
        gaps = np.diff(np.unique(its.to_numpy(float)))
        if len(gaps):
            out[run_id] = float(np.median(gaps))
    return out


def censored_time_to_learn(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.Series:
    """time_to_learn with unlearned or diverged runs set to n_iterations + eval step (worst rank); ≥ one step."""
    steps = runs["run_id"].map(eval_steps(metrics)).fillna(1.0).astype(float)
    learned = as_bool(runs["learned"]).eq(True) & ~as_bool(runs["diverged"]).eq(True)
    ttl = pd.to_numeric(runs["time_to_learn"], errors="coerce")
    ttl = ttl.where(learned & ttl.notna(), pd.to_numeric(runs["n_iterations"], errors="coerce") + steps)
    return np.maximum(ttl, steps)


def final_checkpoints(checkpoints: pd.DataFrame) -> pd.DataFrame:
    """The last checkpoint row of every run, indexed by run_id."""
    last = checkpoints.sort_values(["run_id", "iteration"], kind="stable").groupby("run_id").tail(1)
    return last.set_index("run_id")


def time_to_attractors(checkpoints: pd.DataFrame, runs: pd.DataFrame, expected: dict[str, int]) -> pd.Series:
    """Per run: first checkpoint iteration with n_stable ≥ the task's expected count; never reached ->
    last checkpoint + one checkpoint interval (worst rank). NaN for runs without checkpoints or target."""
    task_of = runs.set_index("run_id")["task"]
    out = {}
    for run_id, ck in checkpoints.groupby("run_id"):
        target = expected.get(task_of.get(run_id))
        if target is None:
            continue
        ck = ck.sort_values("iteration")
        its = ck["iteration"].to_numpy(float)
        gaps = np.diff(its)
        step = float(gaps[-1]) if len(gaps) else 1.0
        hit = its[ck["n_stable"].to_numpy(float) >= target]
        out[run_id] = max(float(hit[0]) if len(hit) else its[-1] + step, step)
    return runs["run_id"].map(out).astype(float)


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
    verdict, why = decide(comp.effect, comp.ci_low, comp.ci_high, comp.p_value, n=comp.n,
                          min_effect=MIN_EFFECT[claim_id], alpha=alpha)  # fmt: skip
    test = "Wilcoxon signed-rank" if comp.design == "paired" else "Mann-Whitney U"
    text = f"{what}; {comp.describe()}; one-sided {test}; {100 * (1 - alpha):g}% bootstrap CI{extra}; verdict: {why}"
    return Outcome(verdict, text, comp.n_runs, comp.effect, comp.ci_low, comp.ci_high, comp.p_value)


def _learned_counts(runs: pd.DataFrame) -> str:
    ok = as_bool(runs["learned"]).eq(True) & ~as_bool(runs["diverged"]).eq(True)
    pos = runs["lambda_tcr"] > 0
    return f"learned: λ>0 {int((ok & pos).sum())}/{int(pos.sum())}, λ=0 {int((ok & ~pos).sum())}/{int((~pos).sum())}"


def _speedup(claim_id: str, d: ClaimData, runs: pd.DataFrame, label: str) -> Outcome:
    runs = runs.assign(ttl=censored_time_to_learn(runs, d.table("metrics")))
    comp = compare_tcr(runs, "ttl", better="lower", scale="ratio", rng=d.rng, n_boot=d.n_boot, alpha=d.alpha,
                       label="time_to_learn")  # fmt: skip
    what = (f"{label}median relative speed-up 1 − ttl(λ>0)/ttl(λ=0) of censored time-to-learn "
            "(unlearned/diverged = n_iterations + eval step)")  # fmt: skip
    used = runs[runs["run_id"].isin(comp.run_ids)]
    return _outcome_from(claim_id, comp, what, d.alpha, f"; {_learned_counts(used)}")


def claim_c1(d: ClaimData) -> Outcome:
    runs = d.runs
    if "has_drop" not in runs.columns:
        raise NotRun("runs.tsv has no has_drop column (no loss-drop analysis)")
    learned = runs[as_bool(runs["learned"]).eq(True) & ~as_bool(runs["diverged"]).eq(True)]
    drop = as_bool(learned["has_drop"])
    learned, drop = learned[drop.notna()], drop[drop.notna()]
    if learned.empty:
        raise NotRun(f"no learned run with a loss-drop analysis among {len(runs)} runs")
    k, n = int(drop.astype(bool).sum()), len(learned)
    frac, lo, hi, p = proportion_test(k, n, d.alpha)
    verdict, why = decide(frac, lo, hi, p, n=n, null=0.5, alpha=d.alpha)
    with_drop = learned[drop.astype(bool).to_numpy()]
    plateau = pd.to_numeric(with_drop.get("plateau_length"), errors="coerce").median()
    sharp = pd.to_numeric(with_drop.get("drop_sharpness"), errors="coerce").median()
    groups = ", ".join(f"{a}: {int(g.sum())}/{len(g)}" for a, g in drop.astype(bool).groupby(learned["arch"]))
    text = (f"fraction of learned runs with a detected plateau-then-drop (has_drop) = {k}/{n} ({groups}); "
            f"Clopper-Pearson {100 * (1 - d.alpha):g}% CI; one-sided exact binomial test vs 0.5; "
            f"median plateau {plateau:.4g} it, median sharpness {sharp:.3g} decades/100 it; "
            f"{len(runs) - n} runs not learned or not analysed; verdict: {why}")  # fmt: skip
    return Outcome(verdict, text, n, frac, lo, hi, p)


def claim_c2(d: ClaimData) -> Outcome:
    runs = d.runs
    if not {"t_GR", "t_drop"} <= set(runs.columns):
        raise NotRun("runs.tsv has no t_GR / t_drop columns (no GR analysis)")
    t_gr, t_drop = pd.to_numeric(runs["t_GR"], errors="coerce"), pd.to_numeric(runs["t_drop"], errors="coerce")
    both = t_gr.notna() & t_drop.notna()
    if not both.any():
        raise NotRun(f"no run with both a GR event (t_GR) and a loss drop (t_drop) among {len(runs)} runs")
    lead = (t_drop - t_gr)[both]
    k, n = int((lead > 0).sum()), int(both.sum())
    frac, lo, hi, p = proportion_test(k, n, d.alpha)
    verdict, why = decide(frac, lo, hi, p, n=n, null=0.5, alpha=d.alpha)
    text = (f"fraction of runs with t_GR < t_drop = {k}/{n} (ties count against); Clopper-Pearson "
            f"{100 * (1 - d.alpha):g}% CI; one-sided sign test vs 0.5; median lead t_drop − t_GR = "
            f"{lead.median():.4g} it; {len(runs) - n} runs lack t_GR or t_drop; verdict: {why}")  # fmt: skip
    return Outcome(verdict, text, n, frac, lo, hi, p)


def claim_c3(d: ClaimData) -> Outcome:
    runs = _not_freeze_in(d.runs)
    if runs.empty:
        raise NotRun("no runs outside the freeze-in rules")
    return _speedup("C3", d, runs, "")


def claim_c4(d: ClaimData) -> Outcome:
    expected = {**EXPECTED_STABLE, **(d.spec.get("expected_stable") or {})}
    ck = d.table("checkpoints")
    if ck.empty or "n_stable" not in ck.columns:
        raise NotRun("no checkpoint analysis (checkpoints.tsv n_stable) for these runs")
    runs = _not_freeze_in(d.runs)
    runs = runs[runs["task"].isin(expected)]
    if runs.empty:
        raise NotRun(f"needs runs of a task with a known attractor count ({expected})")
    runs = runs.assign(t_attr=time_to_attractors(ck, runs, expected))
    comp = compare_tcr(runs, "t_attr", better="lower", scale="ratio", rng=d.rng, n_boot=d.n_boot, alpha=d.alpha,
                       label="time to attractors (checkpoint analysis)")  # fmt: skip
    runs = runs[runs["run_id"].isin(comp.run_ids)]
    final = final_checkpoints(ck)
    target = runs["task"].map(expected)
    reached = runs["run_id"].map(final["n_stable"]).astype(float) >= target
    pos = runs["lambda_tcr"] > 0
    rates = f"; ≥ target at the final checkpoint: λ>0 {int((reached & pos).sum())}/{int(pos.sum())}, " \
            f"λ=0 {int((reached & ~pos).sum())}/{int((~pos).sum())}"
    what = (f"median relative speed-up in reaching the expected stable fixed points "
            f"({', '.join(f'{t}: ≥{c}' for t, c in expected.items())}; never = last checkpoint + interval)")
    return _outcome_from("C4", comp, what, d.alpha, rates)


def _gain_threshold(d: ClaimData) -> float:
    return float(d.spec.get("gain_threshold", GAIN_THRESHOLD))


def claim_c5(d: ClaimData) -> Outcome:
    g = _gain_threshold(d)
    runs = _not_freeze_in(d.runs)
    runs = runs[runs["gain"].astype(float) > g]
    if runs.empty:
        raise NotRun(f"needs runs at gain > {g:g}; found gains {sorted(d.runs['gain'].unique())}")
    return _speedup("C5", d, runs, f"gain > {g:g}: ")


def claim_c6(d: ClaimData) -> Outcome:
    runs = d.runs[d.runs["learning_rule"].isin(LOCAL_RULES)]
    if runs.empty:
        raise NotRun(f"needs runs with a local learning rule {LOCAL_RULES}")
    return _speedup("C6", d, runs, "local rules: ")


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
    comp = compare_tcr(runs, "speed", better="lower", scale="ratio", rng=d.rng, n_boot=d.n_boot, alpha=d.alpha,
                       label="final mean_speed")  # fmt: skip
    verdict, why = decide(comp.effect, comp.ci_low, comp.ci_high, comp.p_value, n=comp.n,
                          min_effect=MIN_EFFECT["C8"], alpha=d.alpha)  # fmt: skip
    if "ramping_index" in ck.columns:
        runs = runs.assign(ramp=runs["run_id"].map(final["ramping_index"]).astype(float))
        try:
            ramp = compare_tcr(runs, "ramp", better="higher", scale="difference", rng=d.rng, n_boot=d.n_boot,
                               alpha=d.alpha, label="final ramping_index")  # fmt: skip
            r_verdict, r_why = decide(ramp.effect, ramp.ci_low, ramp.ci_high, ramp.p_value, n=ramp.n,
                                      min_effect=RAMPING_MIN_EFFECT, alpha=d.alpha)  # fmt: skip
            secondary = (f"secondary: median Δ ramping_index (λ>0 − λ=0) = {ramp.effect:.3g} "
                         f"[{ramp.ci_low:.3g}, {ramp.ci_high:.3g}], p = {ramp.p_value:.3g} ({ramp.design}, "
                         f"n = {ramp.n}) -> {r_verdict} ({r_why})")  # fmt: skip
        except NotRun as err:
            r_verdict, secondary = "inconclusive", f"secondary: ramping_index not comparable ({err})"
    else:
        r_verdict, secondary = "inconclusive", "secondary: checkpoints.tsv has no ramping_index column"
    overall = weaker_verdict(verdict, r_verdict)
    test = "Wilcoxon signed-rank" if comp.design == "paired" else "Mann-Whitney U"
    text = (f"primary: median relative reduction of final-checkpoint mean_speed 1 − speed(λ>0)/speed(λ=0); "
            f"{comp.describe()}; one-sided {test}; {100 * (1 - d.alpha):g}% bootstrap CI -> {verdict} ({why}); "
            f"{secondary}; verdict = the weaker of the two parts")  # fmt: skip
    return Outcome(overall, text, comp.n_runs, comp.effect, comp.ci_low, comp.ci_high, comp.p_value)


def claim_c9(d: ClaimData) -> Outcome:
    g = _gain_threshold(d)
    runs = _not_freeze_in(d.runs)
    runs = runs.assign(ttl=censored_time_to_learn(runs, d.table("metrics")))
    high, low = runs[runs["gain"].astype(float) > g], runs[runs["gain"].astype(float) <= g]
    if high.empty or low.empty:
        raise NotRun(f"needs runs at gain ≤ {g:g} and gain > {g:g}; found gains {sorted(runs['gain'].unique())}")
    kw = dict(better="lower", scale="ratio", rng=d.rng, n_boot=d.n_boot, alpha=d.alpha, label="time_to_learn")
    try:
        c_high = compare_tcr(high, "ttl", **kw)
        c_low = compare_tcr(low, "ttl", **kw)
    except NotRun as err:
        raise NotRun(f"at each gain level (≤ {g:g} and > {g:g}): {err}") from None
    if c_high.design != "paired" or c_low.design != "paired":
        return Outcome("inconclusive", f"needs ≥ {MIN_N} seed-paired λ=0/λ>0 units at both gain levels "
                       f"(gain > {g:g}: {c_high.n}, ≤ {g:g}: {c_low.n})", c_high.n_runs + c_low.n_runs)  # fmt: skip
    effect = c_high.effect - c_low.effect
    lo, hi = percentile_ci(c_high.replicates - c_low.replicates, d.alpha)
    p = mann_whitney_greater(c_high.unit_scores, c_low.unit_scores)
    n = min(c_high.n, c_low.n)
    verdict, why = decide(effect, lo, hi, p, n=n, min_effect=MIN_EFFECT["C9"], alpha=d.alpha)
    text = (f"median censored time-to-learn speed-up at gain > {g:g} ({c_high.effect:.3g}, n = {c_high.n}) "
            f"minus at gain ≤ {g:g} ({c_low.effect:.3g}, n = {c_low.n}); seed-paired, λ>0 pooled; "
            f"{100 * (1 - d.alpha):g}% CI from independent bootstraps; one-sided Mann-Whitney U on per-unit "
            f"log ratios; initial distance to the solution not measured; verdict: {why}")  # fmt: skip
    return Outcome(verdict, text, c_high.n_runs + c_low.n_runs, effect, lo, hi, p)


def claim_c10(d: ClaimData) -> Outcome:
    runs = _not_freeze_in(d.runs)
    runs = runs.assign(ttl=censored_time_to_learn(runs, d.table("metrics")))
    per_task, reasons = {}, []
    for task, sub in runs.groupby("task"):
        try:
            per_task[task] = (sub, compare_tcr(sub, "ttl", better="higher", scale="ratio", rng=d.rng,
                                               n_boot=d.n_boot, alpha=d.alpha, treated="largest",
                                               label="time_to_learn"))  # fmt: skip
        except NotRun as err:
            reasons.append(f"{task}: {err}")
    if not per_task:
        raise NotRun("; ".join(reasons) or "no runs")
    k = len(per_task)
    a_k = d.alpha / k
    results = {}
    for task, (sub, comp) in per_task.items():
        lo, hi = percentile_ci(comp.replicates, a_k)
        p = min(1.0, comp.p_value * k)  # Bonferroni-adjusted, compared with alpha
        verdict, why = decide(comp.effect, lo, hi, p, n=comp.n, min_effect=MIN_EFFECT["C10"], alpha=d.alpha)
        results[task] = (verdict, why, lo, hi, p)
    verdicts = [r[0] for r in results.values()]
    overall = ("supported" if "supported" in verdicts
               else "not supported" if all(v == "not supported" for v in verdicts) else "inconclusive")  # fmt: skip
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
    text = (f"per task, median relative slow-down ttl(largest λ)/ttl(λ=0) − 1 of censored time-to-learn; "
            f"shown: {task} ({comp.describe()}); Bonferroni over {k} task(s): {100 * (1 - a_k):.3g}% bootstrap "
            f"CI, p × {k}; one-sided {'Wilcoxon signed-rank' if comp.design == 'paired' else 'Mann-Whitney U'}; "
            f"median ttl by λ: {shape}" + (f"; other tasks: {others}" if others else "")
            + (f"; not testable: {'; '.join(reasons)}" if reasons else "") + f"; verdict: {why}")  # fmt: skip
    return Outcome(overall, text, int(sum(c.n_runs for _, c in per_task.values())), comp.effect, lo, hi, p)


def claim_c11(d: ClaimData) -> Outcome:
    runs = d.runs[d.runs["lambda_tcr"] > 0]
    free = runs[runs["learning_rule"] == FREEZE_IN]
    ctrl = runs[runs["learning_rule"].isin(FREEZE_IN_CONTROLLED)]
    if free.empty or ctrl.empty:
        raise NotRun(f"needs λ>0 runs of '{FREEZE_IN}' and of {FREEZE_IN_CONTROLLED}; found rules "
                     f"{sorted(d.runs['learning_rule'].unique())}")  # fmt: skip
    metrics = d.table("metrics")
    if "activity_var" not in metrics.columns:
        raise NotRun("metrics.tsv has no activity_var column")
    m = metrics[np.isfinite(pd.to_numeric(metrics["activity_var"], errors="coerce"))]
    last_var = m.sort_values(["run_id", "iteration"], kind="stable").groupby("run_id")["activity_var"].last()

    def log_var(group):
        v = group["run_id"].map(last_var).astype(float).dropna().to_numpy()
        return np.log10(np.maximum(v, LOG_FLOOR))

    lf, lc = log_var(free), log_var(ctrl)
    if len(lf) == 0 or len(lc) == 0:
        raise NotRun("no finite activity_var for the freeze-in runs")
    effect = float(np.median(lc) - np.median(lf))
    reps = bootstrap_median(lc, d.rng, d.n_boot) - bootstrap_median(lf, d.rng, d.n_boot)
    lo, hi = percentile_ci(reps, d.alpha)
    p = mann_whitney_greater(lc, lf)
    n = int(min(len(lf), len(lc)))
    verdict, why = decide(effect, lo, hi, p, n=n, min_effect=MIN_EFFECT["C11"], alpha=d.alpha)
    trivial = ""
    ck = d.table("checkpoints")
    if not ck.empty and {"n_fixed", "n_stable"} <= set(ck.columns):
        final = final_checkpoints(ck)
        one = (final["n_fixed"] == 1) & (final["n_stable"] == 1)

        def frac(group):
            f = group["run_id"].map(one).dropna().astype(bool)
            return f"{int(f.sum())}/{len(f)}"

        trivial = f"; single stable fixed point at the end: freeze_in {frac(free)}, controlled {frac(ctrl)}"
    text = (f"decades by which final activity_var of freeze_in ({len(lf)} runs) lies below the controlled "
            f"freeze_in_noise/freeze_in_control runs ({len(lc)}): median log10 var difference; "
            f"{100 * (1 - d.alpha):g}% bootstrap CI; one-sided Mann-Whitney U{trivial}; verdict: {why}")  # fmt: skip
    return Outcome(verdict, text, len(lf) + len(lc), effect, lo, hi, p)


CLAIM_FUNCTIONS: dict[str, Callable[[ClaimData], Outcome]] = {
    "C1": claim_c1, "C2": claim_c2, "C3": claim_c3, "C4": claim_c4, "C5": claim_c5, "C6": claim_c6,
    "C7": claim_c7, "C8": claim_c8, "C9": claim_c9, "C10": claim_c10, "C11": claim_c11,
}  # fmt: skip


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
    needed = {"run_id", "task", "arch", "learning_rule", "lambda_tcr", "gain", "seed", "n_iterations",
              "time_to_learn", "learned", "diverged"}  # fmt: skip
    missing = sorted(needed - set(tables["runs"].columns))
    if missing and len(tables["runs"]):
        raise ValueError(f"runs table lacks column(s) {missing}")
    if not isinstance(experiments, dict) or not all(
        isinstance(k, str) and isinstance(v, (list, tuple)) for k, v in experiments.items()
    ):
        raise ValueError("experiments must map experiment name -> list of run_ids")
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


def evaluate_claims(tables: dict[str, pd.DataFrame], experiments: dict[str, list[str]], claims: dict[str, dict],
                    *, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """The claim table (``COLUMNS``), one row per claim C1..C11 in order; see the module docstring."""
    validate_inputs(tables, experiments, claims)
    runs_all = _prepare_runs(tables["runs"]) if len(tables["runs"]) else tables["runs"]
    rows = []
    for number, cid in enumerate(CLAIM_IDS, start=1):
        spec = claims.get(cid)
        names = _names(spec.get("experiment")) if spec else []
        row = {"claim_id": cid, "claim": CLAIM_TEXT[cid], "experiment": ", ".join(names),
               "figure": ", ".join(_names(spec.get("figure"))) if spec else ""}  # fmt: skip
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
        row.update(n_runs=out.n_runs, statistic=out.statistic, effect=out.effect, ci_low=out.ci_low,
                   ci_high=out.ci_high, p_value=out.p_value, verdict=out.verdict)  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _fmt(v) -> str:
    return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3g}"


def _text(v) -> str:
    """A text cell; missing (None/NaN, as read back from a TSV) is empty."""
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def render_markdown(df: pd.DataFrame) -> str:
    """The claim table as Markdown: verdict, effect [CI], p, runs, where to look, and how it was computed."""
    header = "| Claim | | Verdict | Effect [CI] | p | Runs | Experiment | Figure | Statistic |"
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        effect = _fmt(r.effect)
        if effect and _fmt(r.ci_low):
            effect += f" [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
        cells = [r.claim_id, r.claim, f"**{r.verdict}**", effect, _fmt(r.p_value), str(int(r.n_runs)),
                 r.experiment, r.figure, r.statistic]  # fmt: skip
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
    for name in (*TABLE_NAMES, "kappa_flow"):
        path = folder / f"{name}.tsv"
        try:
            tables[name] = pd.read_csv(path, sep="\t") if path.is_file() else pd.DataFrame(columns=["run_id"])
        except pd.errors.EmptyDataError:
            tables[name] = pd.DataFrame(columns=["run_id"])
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise ValueError(f"--tables: cannot read {path}: {err}") from None
    return tables


def runs_in(runs: pd.DataFrame, grid: dict) -> list[str]:
    """run_ids of the runs table inside an experiment grid {column: allowed values}."""
    from rnngeom.config import in_grid

    missing = sorted(set(grid) - set(runs.columns))
    if missing:
        raise ValueError(f"runs table lacks the grid column(s) {missing}")
    return sorted(runs.loc[in_grid(runs, grid), "run_id"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate the paper's claims C1..C11 from the aggregate tables")
    ap.add_argument("--tables", required=True, help="folder with runs.tsv, metrics.tsv, checkpoints.tsv, ...")
    ap.add_argument("--experiments", required=True, help="JSON {experiment: [run_id, ...] or grid {column: values}} or @file")
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
        if isinstance(experiments, dict):  # {name: grid} (what the pipeline passes) -> {name: [run_id, ...]}
            experiments = {name: runs_in(tables["runs"], v) if isinstance(v, dict) else v
                           for name, v in experiments.items()}  # fmt: skip
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
