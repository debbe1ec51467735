"""The claims C1..C11: their wording (``CLAIM_TEXT``), their order (``CLAIM_IDS``: the rows of the claim
table) and the function that evaluates each (``CLAIM_FUNCTIONS``, in the module of its idea).

Each function takes the claim's ``ClaimData`` and returns an ``Outcome``, or raises ``NotRun`` (the data it
needs are absent) or ``NotTestable`` (its precondition fails in its own runs).
"""

from __future__ import annotations

from collections.abc import Callable

from rnngeom.claims.abrupt import claim_c1
from rnngeom.claims.claim_data import ClaimData
from rnngeom.claims.dynamics import claim_c4, claim_c8
from rnngeom.claims.freeze_in import claim_c11
from rnngeom.claims.gr_drop import claim_c2
from rnngeom.claims.speedup import claim_c3, claim_c5, claim_c6, claim_c7, claim_c9, claim_c10
from rnngeom.claims.verdict import Outcome

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
