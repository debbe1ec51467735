"""The verdict rule: how a claim's effect, CI and p-value become one of ``VERDICTS``.

Every effect is oriented so that a **positive effect (or a proportion or C2's mean rank above 0.5) is the
claimed direction**. With n = the size of the smallest group (units, runs, or runs per arm), null = 0 (0.5 for
C1's proportion and C2's mean rank), and a minimal effect of interest m per claim (``MIN_EFFECT``: 0.10
relative speed-up / slow-down / reduction, 0.10 difference of speed-ups, 0.20 difference of collapse fractions
(C11), 0 above 0.5 for C1 and C2; C8's secondary part, the ramping index above its null, has its own, 0.05):

1. "inconclusive" if n < 3 (``MIN_N``) or the effect/CI/p is undefined;
2. "supported" if the CI lies entirely above the null AND p < alpha;
3. "not supported" if the CI lies entirely below the null (the opposite direction), or if n ≥ 8
   (``DECISIVE_N``) and the whole CI lies below null + m (enough data to rule out any effect worth claiming);
4. "inconclusive" otherwise.

Two verdicts come from outside the rule, each raised as an exception by the claim's function:

* "not testable here" (``NotTestable``): the claim's precondition fails in its own runs (``preconditions``);
* "not run" (``NotRun``): the claim has no experiment in the config, its experiment has no runs in the tables,
  or the runs lack the conditions it needs (e.g. only λ=0, no rflo runs, no checkpoint analysis).

Every threshold here was fixed before looking at any result; none is tuned to the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

VERDICTS = ("supported", "not supported", "inconclusive", "not testable here", "not run")

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
    control: dict = field(default_factory=dict)  # C2: the same test on the weight motion (table.CONTROL_KEYS)


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
