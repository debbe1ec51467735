"""C1, abrupt learning: a plateau, then a sudden drop, is the typical course of training.

The runs of the claim that **left their plateau** (runs.tsv ``escaped``: the loss fell 0.5 decades below its
plateau level) and did not diverge, pooled over tasks, archs and λ; runs that never left it have no drop to
judge and are only counted in the text. Effect = the fraction of them whose escape was ``abrupt`` (the
loss-drop analysis, ``rnngeom.analysis.loss_drop``: a flat plateau, then an escape at most a quarter as long
as it). CI: exact Clopper-Pearson; p: one-sided exact binomial test against 0.5 (null: an abrupt escape is no
more common than a gradual one); verdict with null 0.5. Per-arch counts, and the median plateau_length and
width_over_plateau of the abrupt runs, are reported in the text.

Precondition: the search phase (``preconditions.search_precondition``), so that runs without any plateau read
as "not testable here" and plateaus followed by gradual falls as "not supported"; and at least one run left
its plateau. Needs the runs.tsv columns ``abrupt`` and ``escaped`` (else "not run").
"""

from __future__ import annotations

import math

import pandas as pd

from rnngeom.claims.claim_data import ClaimData
from rnngeom.claims.preconditions import search_precondition
from rnngeom.claims.stats import proportion_test
from rnngeom.claims.verdict import NotRun, NotTestable, Outcome, decide
from rnngeom.io import as_bool


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
