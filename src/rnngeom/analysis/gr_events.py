"""Geometric-restructuring (GR) events: changes of the fixed/slow-point set between consecutive checkpoints.

GR score between checkpoints k-1 and k (points in the run's fixed PCA frame):

    score = w_count  · |ΔK|                         (change in the number of points)
          + w_class  · Σ_kind |Δn_kind|              (change in the count of each class: stable, saddle, ...)
          + w_move   · Σ_matched ‖Δposition‖ / scale (relocation of matched points)
          + w_appear · (n_appear + n_disappear)      (points without a partner)

Points are matched by the Hungarian algorithm (scipy.optimize.linear_sum_assignment) on Euclidean distance;
a pair further apart than ``match_radius`` (in units of ``scale``, the trajectories' RMS spread in the frame)
is not a match: one point disappeared and another appeared.

Calibrated events. The fixed-point finder starts from a sample of states, so two analyses of the *same*
network with other start seeds can differ (a saddle found once and missed once scores 3). The run analysis
therefore (1) analyses every checkpoint from one start set per run (the same footing for every pair), and
(2) measures the noise: it re-analyses a few checkpoints with other start seeds and scores each
re-analysis against the main one (``null_scores``: identical networks, so every point of these scores is
start-sampling noise). The event threshold is

    threshold = max(min_threshold, (1 + margin) · max(null scores))

(``gr_threshold``), and a transition is an event if its score exceeds it. Every transition is judged (no
baseline window). t_GR is the first event, t_GR_max the transition with the largest score / threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from rnngeom.analysis.fixed_points import KINDS

SCORE_COLUMNS = [
    "iteration_prev",
    "iteration",
    "score",
    "d_count",
    "d_class",
    "relocation",
    "n_appear",
    "n_disappear",
    "n_kind_change",
    "n_points_prev",
    "n_points",
]
EVENT_COLUMNS = SCORE_COLUMNS + ["threshold"]
# gr_scores.tsv: every transition with the run's calibrated threshold (null_q) and whether it is an event;
# aggregate prefixes these with "gr_" in checkpoints.tsv (gr_score, gr_null_q, gr_event)
JUDGED_COLUMNS = SCORE_COLUMNS + ["null_q", "event"]


def match_points(prev: np.ndarray, curr: np.ndarray, max_dist: float):
    """Hungarian matching of point sets [K1, D] and [K2, D]; pairs further than max_dist are dropped.
    Returns (pairs [(i, j)], distances [n_pairs], unmatched prev indices, unmatched curr indices)."""
    if len(prev) == 0 or len(curr) == 0:
        return [], np.zeros(0), np.arange(len(prev)), np.arange(len(curr))
    prev, curr = (
        np.asarray(prev, float).reshape(len(prev), -1),
        np.asarray(curr, float).reshape(len(curr), -1),
    )
    d = cdist(prev, curr)
    rows, cols = linear_sum_assignment(d)
    good = d[rows, cols] <= max_dist
    rows, cols = rows[good], cols[good]
    return (
        list(zip(rows.tolist(), cols.tolist())),
        d[rows, cols],
        np.setdiff1d(np.arange(len(prev)), rows),
        np.setdiff1d(np.arange(len(curr)), cols),
    )


def gr_transition(
    prev_pos,
    prev_kind,
    curr_pos,
    curr_kind,
    *,
    scale: float = 1.0,
    match_radius: float = 0.5,
    w_count: float = 1.0,
    w_class: float = 1.0,
    w_move: float = 1.0,
    w_appear: float = 1.0,
) -> dict:
    """Score one transition between two point sets (positions [K, D] in the PCA frame, kinds [K])."""
    prev_kind, curr_kind = np.asarray(prev_kind, object), np.asarray(curr_kind, object)
    pairs, dist, gone, new = match_points(prev_pos, curr_pos, match_radius * scale)
    d_count = abs(len(curr_kind) - len(prev_kind))
    d_class = sum(abs(int((curr_kind == k).sum()) - int((prev_kind == k).sum())) for k in KINDS)
    relocation = float(dist.sum() / scale) if len(dist) else 0.0
    n_kind_change = sum(prev_kind[i] != curr_kind[j] for i, j in pairs)
    score = w_count * d_count + w_class * d_class + w_move * relocation + w_appear * (len(gone) + len(new))
    return {
        "score": float(score),
        "d_count": int(d_count),
        "d_class": int(d_class),
        "relocation": relocation,
        "n_appear": int(len(new)),
        "n_disappear": int(len(gone)),
        "n_kind_change": int(n_kind_change),
        "n_points_prev": int(len(prev_kind)),
        "n_points": int(len(curr_kind)),
    }


def gr_scores(
    points: pd.DataFrame,
    iterations: Sequence[int],
    *,
    coords: Sequence[str] = ("pc1", "pc2", "pc3"),
    kinds: Sequence[str] = KINDS,
    scale: float = 1.0,
    match_radius: float = 0.5,
    w_count: float = 1.0,
    w_class: float = 1.0,
    w_move: float = 1.0,
    w_appear: float = 1.0,
) -> pd.DataFrame:
    """GR score for each consecutive pair of checkpoints.

    points: the fixed-point table (columns iteration, kind and ``coords``; one row per checkpoint x point).
    iterations: every checkpoint's iteration (checkpoints without points have no rows but still count).
    kinds: which classes take part (e.g. drop "slow" to ignore slow points).
    scale, match_radius, w_*: see the module docstring.
    Returns a table with SCORE_COLUMNS, one row per transition.
    """
    its = sorted(int(i) for i in iterations)
    pts = points[points["kind"].isin(list(kinds))] if len(points) else points
    by_it = {int(i): g for i, g in pts.groupby("iteration")} if len(pts) else {}
    empty_pos = np.zeros((0, len(coords)))

    def at(i):
        g = by_it.get(i)
        if g is None:
            return empty_pos, np.array([], object)
        return g[list(coords)].to_numpy(float), g["kind"].to_numpy(object)

    rows = []
    for i_prev, i in zip(its[:-1], its[1:]):
        (p_pos, p_kind), (c_pos, c_kind) = at(i_prev), at(i)
        rows.append(
            {
                "iteration_prev": i_prev,
                "iteration": i,
                **gr_transition(
                    p_pos,
                    p_kind,
                    c_pos,
                    c_kind,
                    scale=scale,
                    match_radius=match_radius,
                    w_count=w_count,
                    w_class=w_class,
                    w_move=w_move,
                    w_appear=w_appear,
                ),
            }
        )
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def gr_threshold(null_scores, *, margin: float = 0.5, min_threshold: float = 3.5) -> float:
    """Event threshold from the null scores (same checkpoint, other start seeds): (1 + margin) x their
    maximum, at least min_threshold. The floor matters where the null sample is all ~0 (e.g. the exhaustive
    PLRNN solver, or a small network whose few re-analyses agree): one point found in one analysis and missed
    in the other scores 3 (count, class and appearance 1 each) plus a little relocation of the others, a
    flicker a few re-analyses can miss, so the default floor 3.5 asks for more than one point's change (a
    pitchfork or a new attractor-saddle pair scores about 6; one point changing stability alone scores 2 and
    is below the floor)."""
    null = np.asarray(null_scores, dtype=np.float64)
    null = null[np.isfinite(null)]
    top = float(null.max()) if len(null) else 0.0
    return max(float(min_threshold), (1.0 + float(margin)) * top)


@dataclass
class GREvents:
    scores: pd.DataFrame  # JUDGED_COLUMNS, one row per transition
    events: pd.DataFrame  # EVENT_COLUMNS, possibly empty
    t_gr: int | None  # iteration of the first event
    t_gr_max: int | None  # iteration of the largest score / threshold (None: no transition)
    threshold: float


def detect_gr_events(scores: pd.DataFrame, threshold: float) -> GREvents:
    """Events = transitions whose score exceeds the calibrated threshold (see ``gr_threshold``)."""
    empty = pd.DataFrame(
        {
            c: pd.Series(dtype="int64" if c.startswith(("iteration", "n_", "d_")) else "float64")
            for c in EVENT_COLUMNS
        }
    )
    ev = scores[scores["score"] > threshold].copy()
    ev["threshold"] = threshold
    ev = ev[EVENT_COLUMNS].reset_index(drop=True) if len(ev) else empty
    t_gr = int(ev["iteration"].iloc[0]) if len(ev) else None
    t_gr_max = None
    if len(scores):  # one threshold per run: the largest score / threshold is the largest score
        t_gr_max = int(scores["iteration"].iloc[int(np.argmax(scores["score"].to_numpy(float)))])
    judged = scores.assign(null_q=float(threshold), event=scores["score"] > threshold)[JUDGED_COLUMNS]
    return GREvents(judged.reset_index(drop=True), ev, t_gr, t_gr_max, float(threshold))
