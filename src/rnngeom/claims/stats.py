"""The statistics the claims share: percentile bootstrap CIs, the exact binomial proportion test, and the
one-sided rank tests (Wilcoxon signed-rank for paired units, Mann-Whitney U for two groups).

CIs are (1 − alpha) percentile bootstrap intervals over ``n_boot`` resamples of units (or of runs within
groups), drawn from the claim's own generator (seeded by the table's seed and the claim number, so the claim
table is a deterministic function of its inputs); C1's proportion uses the exact Clopper-Pearson interval
instead. Every p-value is one-sided, in the claimed direction.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


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
