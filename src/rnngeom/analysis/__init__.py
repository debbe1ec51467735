"""Phase-space analysis: fixed/slow points (generic and exact PLRNN), loss-drop and GR-event detection.

The per-run pipeline stage is ``python -m rnngeom.analysis.run_analysis`` (not imported here, so that
``-m`` runs it cleanly).
"""

from rnngeom.analysis.fixed_points import (
    KINDS,
    FixedPointSet,
    find_fixed_points,
    find_fixed_points_batched,
    sample_starts,
)
from rnngeom.analysis.gr_events import (
    GREvents,
    detect_gr_events,
    gr_scores,
    gr_threshold,
    gr_transition,
    match_points,
)
from rnngeom.analysis.loss_drop import LossDrop, detect_loss_drop, time_to_learn
from rnngeom.analysis.pca import PCA
from rnngeom.analysis.plrnn_exact import plrnn_fixed_points, plrnn_fixed_points_of

__all__ = [
    "KINDS",
    "FixedPointSet",
    "find_fixed_points",
    "find_fixed_points_batched",
    "sample_starts",
    "GREvents",
    "detect_gr_events",
    "gr_threshold",
    "gr_scores",
    "gr_transition",
    "match_points",
    "LossDrop",
    "detect_loss_drop",
    "time_to_learn",
    "PCA",
    "plrnn_fixed_points",
    "plrnn_fixed_points_of",
]
