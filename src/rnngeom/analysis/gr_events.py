"""Geometric-restructuring (GR) events: changes of the fixed/slow-point set between consecutive checkpoints.

GR score between checkpoints k-1 and k (points in the run's fixed PCA frame):

    score = w_count  · |ΔK|                         (change in the number of points)
          + w_class  · Σ_kind |Δn_kind|              (change in the count of each class: stable, saddle, ...)
          + w_move   · Σ_matched ‖Δposition‖ / scale (relocation of matched points)
          + w_appear · (n_appear + n_disappear)      (points without a partner)

Points are matched by the Hungarian algorithm (scipy.optimize.linear_sum_assignment) on Euclidean distance;
a pair further apart than ``match_radius`` (in units of ``scale``, the trajectories' RMS spread in the frame)
is not a match: one point disappeared and another appeared.

Event rule: a transition is an event if score > max(abs_floor, median + k·1.4826·MAD of the baseline), where
the baseline is the run's first ``baseline_n`` transitions after the first ``skip_first`` (the early plateau:
the run's own noise level; median/MAD so that a restructuring inside the window does not inflate it). All
transitions from ``skip_first`` on are judged. t_GR is the iteration of the first event (the later
checkpoint of the pair).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


def match_points(prev: np.ndarray, curr: np.ndarray, max_dist: float):
    """Hungarian matching of point sets [K1, D] and [K2, D]; pairs further than max_dist are dropped.
    Returns (pairs [(i, j)], distances [n_pairs], unmatched prev indices, unmatched curr indices)."""
    if len(prev) == 0 or len(curr) == 0:
        return [], np.zeros(0), np.arange(len(prev)), np.arange(len(curr))
    prev, curr = np.asarray(prev, float).reshape(len(prev), -1), np.asarray(curr, float).reshape(len(curr), -1)
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


def gr_transition(prev_pos, prev_kind, curr_pos, curr_kind, *, scale: float = 1.0, match_radius: float = 0.5,
                  w_count: float = 1.0, w_class: float = 1.0, w_move: float = 1.0, w_appear: float = 1.0) -> dict:
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
        rows.append({"iteration_prev": i_prev, "iteration": i, **gr_transition(
            p_pos, p_kind, c_pos, c_kind, scale=scale, match_radius=match_radius,
            w_count=w_count, w_class=w_class, w_move=w_move, w_appear=w_appear)})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


@dataclass
class GREvents:
    events: pd.DataFrame  # EVENT_COLUMNS, possibly empty
    t_gr: int | None  # iteration of the first event
    threshold: float | None  # None when there were too few transitions to set a baseline
    baseline_median: float | None
    baseline_mad: float | None
    reason: str


def detect_gr_events(
    scores: pd.DataFrame,
    *,
    skip_first: int = 1,
    baseline_n: int = 5,
    k: float = 3.0,
    abs_floor: float = 1.0,
) -> GREvents:
    """Events = transitions (from index skip_first on) whose score exceeds
    threshold = max(abs_floor, median + k · 1.4826 · MAD) of the baseline scores.

    skip_first: leading transitions that are never judged nor used as baseline (the first one starts from the
        random initialisation: the search phase, not the plateau).
    baseline_n: the next baseline_n transitions form the baseline (the early plateau). Median and MAD are
        robust, so a restructuring that happens inside the baseline window neither hides itself nor raises
        the threshold much, and it is judged like any other transition.
    k, abs_floor: threshold in robust standard deviations (1.4826·MAD), and its lower bound in score units.
    """
    empty = pd.DataFrame({c: pd.Series(dtype="int64" if c.startswith(("iteration", "n_", "d_")) else "float64")
                          for c in EVENT_COLUMNS})
    if baseline_n < 1 or len(scores) < skip_first + baseline_n:
        return GREvents(empty, None, None, None, None,
                        f"{len(scores)} transitions: need skip_first + baseline_n = {skip_first + baseline_n}")
    base = scores["score"].to_numpy(float)[skip_first : skip_first + baseline_n]
    median = float(np.median(base))
    mad = float(np.median(np.abs(base - median)))
    threshold = max(abs_floor, median + k * 1.4826 * mad)
    judged = scores.iloc[skip_first:]
    ev = judged[judged["score"] > threshold].copy()
    ev["threshold"] = threshold
    ev = ev[EVENT_COLUMNS].reset_index(drop=True) if len(ev) else empty
    t_gr = int(ev["iteration"].iloc[0]) if len(ev) else None
    return GREvents(ev, t_gr, threshold, median, mad, "events" if len(ev) else "no transition above threshold")
