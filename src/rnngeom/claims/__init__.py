"""The claim table: one row per claim C1..C11 of the paper, with an effect size, a CI, a p-value and a
verdict, computed from the tidy tables of ``rnngeom.aggregate``.

    python -m rnngeom.claims --tables results/tables --experiments @experiments.json --claims @claims.json \\
        --out results/claims.tsv --markdown results/claims.md

Every statistic and the verdict rule were fixed before looking at any result; none is tuned to the data. One
module per idea:

* ``table``: the table itself (inputs, columns, one row per claim), its Markdown copy and the command line;
* ``registry``: the claims' wording, order and functions; ``claim_data``: what a claim's function receives;
* ``verdict``: the verdict rule (``decide``) and the outcomes "not testable here" / "not run";
* ``stats``: bootstrap CIs and the one-sided tests the claims share;
* ``tcr_effect``: the seed-paired λ>0 vs λ=0 comparison of C3-C10 (stratum, pooling, censoring, fallback);
* ``preconditions``: when a claim is testable in its own runs (the search phase; local learning);
* the claims: ``abrupt`` (C1), ``gr_drop`` (C2), ``speedup`` (C3, C5, C6, C7, C9, C10), ``dynamics`` (C4,
  C8), ``freeze_in`` (C11);
* ``sim``: simulated C2 data for its false-positive rates and power (``python -m rnngeom.claims.sim``; not
  imported here, so that ``-m`` runs it cleanly).

The names below are re-exported, so ``from rnngeom.claims import evaluate_claims`` (and the rest of the
former single module's public names) keeps working.
"""

from rnngeom.claims.abrupt import claim_c1
from rnngeom.claims.claim_data import ClaimData
from rnngeom.claims.dynamics import RAMPING_MIN_EFFECT, claim_c4, claim_c8
from rnngeom.claims.freeze_in import FREEZE_IN_CONTROLLED, LOG_FLOOR, claim_c11, collapsed
from rnngeom.claims.gr_drop import (
    C2_CONDITION,
    C2_MIN_ORDERINGS,
    C2_MIN_TRANSITIONS,
    C2_WINDOW,
    RATIO_FLOOR,
    Alignment,
    aligned_at_onset,
    checkpoint_series,
    claim_c2,
    gr_drop_permutation_test,
    gr_drop_ranks,
    gr_drop_test,
    gr_series,
    gr_window_at,
)
from rnngeom.claims.preconditions import (
    RFLO_MIN_LEARNED,
    SEARCH_CLAIMS,
    SEARCH_MIN_FRACTION,
    local_rule_precondition,
    search_precondition,
)
from rnngeom.claims.registry import CLAIM_FUNCTIONS, CLAIM_IDS, CLAIM_TEXT
from rnngeom.claims.speedup import LOCAL_RULES, claim_c3, claim_c5, claim_c6, claim_c7, claim_c9, claim_c10
from rnngeom.claims.stats import (
    bootstrap_median,
    mann_whitney_greater,
    percentile_ci,
    proportion_test,
    signed_rank_greater,
)
from rnngeom.claims.table import (
    CLAIM_SPEC_KEYS,
    COLUMNS,
    CONTROL_KEYS,
    evaluate_claims,
    main,
    read_tables,
    render_markdown,
    validate_inputs,
)
from rnngeom.claims.tcr_effect import FREEZE_IN, STRATUM, Comparison, compare_tcr, not_freeze_in, outcome_from
from rnngeom.claims.verdict import (
    DECISIVE_N,
    MIN_EFFECT,
    MIN_N,
    VERDICTS,
    NotRun,
    NotTestable,
    Outcome,
    decide,
    weaker_verdict,
)

__all__ = [
    # the table and its command line
    "COLUMNS",
    "CONTROL_KEYS",
    "CLAIM_SPEC_KEYS",
    "evaluate_claims",
    "render_markdown",
    "read_tables",
    "validate_inputs",
    "main",
    # the claims
    "CLAIM_TEXT",
    "CLAIM_IDS",
    "CLAIM_FUNCTIONS",
    "ClaimData",
    # the verdict rule
    "VERDICTS",
    "MIN_N",
    "DECISIVE_N",
    "MIN_EFFECT",
    "NotRun",
    "NotTestable",
    "Outcome",
    "decide",
    "weaker_verdict",
    # statistics
    "percentile_ci",
    "bootstrap_median",
    "proportion_test",
    "signed_rank_greater",
    "mann_whitney_greater",
    # the λ>0 vs λ=0 comparison
    "STRATUM",
    "FREEZE_IN",
    "Comparison",
    "compare_tcr",
    "outcome_from",
    "not_freeze_in",
    # preconditions
    "SEARCH_MIN_FRACTION",
    "SEARCH_CLAIMS",
    "RFLO_MIN_LEARNED",
    "search_precondition",
    "local_rule_precondition",
    # C1
    "claim_c1",
    # C2
    "C2_WINDOW",
    "C2_MIN_TRANSITIONS",
    "C2_MIN_ORDERINGS",
    "C2_CONDITION",
    "RATIO_FLOOR",
    "gr_window_at",
    "gr_drop_ranks",
    "gr_drop_permutation_test",
    "gr_drop_test",
    "checkpoint_series",
    "gr_series",
    "Alignment",
    "aligned_at_onset",
    "claim_c2",
    # C3, C5, C6, C7, C9, C10
    "LOCAL_RULES",
    "claim_c3",
    "claim_c5",
    "claim_c6",
    "claim_c7",
    "claim_c9",
    "claim_c10",
    # C4, C8
    "RAMPING_MIN_EFFECT",
    "claim_c4",
    "claim_c8",
    # C11
    "FREEZE_IN_CONTROLLED",
    "LOG_FLOOR",
    "collapsed",
    "claim_c11",
]
