"""The claims' preconditions: what must hold in a claim's own runs for the claim to be testable there. Each is
measured every time and written in the table's ``precondition`` column, whatever the verdict; when it fails,
the claim is "not testable here" (``NotTestable``), not "not supported".

Fixed before the confirmation runs:

* the search phase (``search_precondition``; C1, C3, C4, C5, C7, C9, C10, each on its own runs or subset: C5
  and C9 the strongly connected runs (gain > 1), C7 the LSTMs, C10 per task): the λ=0 runs search, their
  median search_fraction (``rnngeom.analysis.loss_drop``: the share of the time to the escape spent on a flat
  plateau; 1 for a run that never escaped) is at least
  ``SEARCH_MIN_FRACTION``. TCR cannot shorten a search that the runs without it do not have.
* local learning (``local_rule_precondition``; C6): the local rule learns without TCR in at least
  ``RFLO_MIN_LEARNED`` of its λ=0 runs. A rule that never learns cannot be sped up.

C2's precondition (enough abrupt drops for its permutation test) is its own test's, measured in ``gr_drop``.
"""

from __future__ import annotations

import pandas as pd

from rnngeom.claims.verdict import NotRun, NotTestable
from rnngeom.io import as_bool

SEARCH_MIN_FRACTION = 0.5
# The claims whose precondition is the search phase. The shared time-to-learn claim function
# (speedup._speedup: C3, C5, C7) reads this list; C1, C4, C9 and C10 call search_precondition themselves.
# C2's precondition is its own (abrupt drops to align on: gr_drop.claim_c2); C6's is local_rule_precondition.
SEARCH_CLAIMS = ("C1", "C3", "C4", "C5", "C7", "C9", "C10")
RFLO_MIN_LEARNED = 0.5


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


def local_rule_precondition(runs: pd.DataFrame) -> str:
    """C6's precondition, measured on the λ=0 runs of ``runs`` (the local rule's): at least RFLO_MIN_LEARNED
    of them learned. Returns the measurement in words; raises NotTestable (with it) when it fails or there is
    no λ=0 run."""
    zero = runs[runs["lambda_tcr"] == 0]
    learned = int(as_bool(zero["censored"]).eq(False).sum())
    precondition = (
        f"the local rule learns without TCR: {learned} of {len(zero)} λ=0 runs learned (needs ≥ "
        f"{RFLO_MIN_LEARNED:.0%})"
    )
    if zero.empty or learned < RFLO_MIN_LEARNED * len(zero):
        raise NotTestable(precondition)
    return precondition
