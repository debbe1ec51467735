"""GR scores and events on synthetic checkpoint sequences whose fixed-point set changes at a known
checkpoint."""

import numpy as np
import pandas as pd
import pytest

from rnngeom.analysis.gr_events import (
    EVENT_COLUMNS,
    JUDGED_COLUMNS,
    SCORE_COLUMNS,
    detect_gr_events,
    gr_scores,
    gr_threshold,
    gr_transition,
    match_points,
)
from rnngeom.io import write_tsv_atomic

ITERATIONS = list(range(0, 201, 20))  # 11 checkpoints
T_CHANGE = 120


def synthetic_points(seed=0, jitter=0.02):
    """Two stable points at (±1, 0, 0) that jitter at every checkpoint; from T_CHANGE on, a third stable point
    at (0, 1, 0) and a saddle at (0, 0.5, 0) appear (the restructuring)."""
    rng = np.random.default_rng(seed)
    rows = []
    for it in ITERATIONS:
        pts = [((-1, 0, 0), "stable"), ((1, 0, 0), "stable")]
        if it >= T_CHANGE:
            pts += [((0, 1, 0), "stable"), ((0, 0.5, 0), "saddle")]
        for pid, (pos, kind) in enumerate(pts):
            p = np.array(pos, float) + jitter * rng.normal(size=3)
            rows.append(
                {"iteration": it, "point_id": pid, "pc1": p[0], "pc2": p[1], "pc3": p[2], "kind": kind}
            )
    return pd.DataFrame(rows)


def test_event_found_at_the_known_checkpoint():
    scores = gr_scores(synthetic_points(), ITERATIONS)
    assert list(scores.columns) == SCORE_COLUMNS and len(scores) == len(ITERATIONS) - 1
    gr = detect_gr_events(scores, gr_threshold([0.05, 0.1, 0.08]))  # null: the jitter of identical networks
    assert gr.threshold == 3.5  # (1 + 0.5) x 0.1 is below the floor min_threshold = 3.5
    assert gr.t_gr == T_CHANGE and gr.t_gr_max == T_CHANGE
    assert gr.events["iteration"].tolist() == [T_CHANGE]
    ev = gr.events.iloc[0]
    assert ev["iteration_prev"] == T_CHANGE - 20 and ev["n_appear"] == 2 and ev["n_disappear"] == 0
    assert ev["d_count"] == 2 and ev["d_class"] == 2  # +1 stable, +1 saddle
    assert ev["score"] > ev["threshold"] >= 1.0


def test_no_change_gives_empty_events_with_fixed_columns(tmp_path):
    pts = synthetic_points()
    pts = pts[pts["point_id"] < 2]  # never restructures
    gr = detect_gr_events(gr_scores(pts, ITERATIONS), gr_threshold([0.1]))
    assert gr.t_gr is None and len(gr.events) == 0 and list(gr.events.columns) == EVENT_COLUMNS
    assert list(gr.scores.columns) == JUDGED_COLUMNS and not gr.scores["event"].any()
    assert (gr.scores["null_q"] == 3.5).all()
    write_tsv_atomic(tmp_path / "events.tsv", gr.events)
    assert (tmp_path / "events.tsv").read_text().strip().split("\t") == EVENT_COLUMNS


def test_relocation_and_stability_change_count():
    # one point moving far (beyond match_radius) = one disappears + one appears; a small move = relocation
    same = gr_transition([[0, 0, 0]], ["stable"], [[0.1, 0, 0]], ["stable"], scale=1.0, match_radius=0.5)
    assert (
        same["n_appear"] == 0
        and same["relocation"] == pytest.approx(0.1)
        and same["score"] == pytest.approx(0.1)
    )
    jump = gr_transition([[0, 0, 0]], ["stable"], [[2, 0, 0]], ["stable"], scale=1.0, match_radius=0.5)
    assert jump["n_appear"] == 1 and jump["n_disappear"] == 1 and jump["relocation"] == 0
    flip = gr_transition([[0, 0, 0]], ["stable"], [[0, 0, 0]], ["saddle"])
    assert flip["n_kind_change"] == 1 and flip["d_class"] == 2 and flip["score"] == 2
    # scale makes relocation unitless
    assert gr_transition([[0, 0]], ["stable"], [[1, 0]], ["stable"], scale=10.0)[
        "relocation"
    ] == pytest.approx(0.1)


def test_checkpoints_without_points_and_kind_filter():
    pts = synthetic_points()
    pts = pts[pts["iteration"] != 60]  # a checkpoint where nothing was found
    scores = gr_scores(pts, ITERATIONS)
    assert scores.loc[scores["iteration"] == 60, "n_points"].item() == 0
    assert scores.loc[scores["iteration"] == 80, "n_appear"].item() == 2
    only_stable = gr_scores(synthetic_points(), ITERATIONS, kinds=["stable"])
    assert only_stable.loc[only_stable["iteration"] == T_CHANGE, "n_appear"].item() == 1


def test_match_points_hungarian():
    pairs, dist, gone, new = match_points(np.array([[0.0], [1.0]]), np.array([[1.05], [0.1], [5.0]]), 0.5)
    assert sorted(pairs) == [(0, 1), (1, 0)] and gone.tolist() == [] and new.tolist() == [2]
    assert sorted(dist.round(6).tolist()) == [0.05, 0.1]


def test_no_transitions():
    gr = detect_gr_events(gr_scores(synthetic_points(), ITERATIONS[:1]), 1.0)
    assert gr.t_gr is None and gr.t_gr_max is None and len(gr.events) == 0 and len(gr.scores) == 0


def test_every_transition_is_judged_and_the_threshold_comes_from_the_null():
    scores = pd.DataFrame({"iteration_prev": range(0, 90, 10), "iteration": range(10, 100, 10)})
    for c in SCORE_COLUMNS[3:]:
        scores[c] = 0
    scores["score"] = [50.0, 0.1, 0.2, 30.0, 0.15, 0.1, 0.2, 60.0, 0.3]  # early and late restructurings
    scores = scores[SCORE_COLUMNS]
    threshold = gr_threshold([2.0, 5.0, 4.0], margin=0.5, min_threshold=1.0)
    assert threshold == pytest.approx(7.5)  # 1.5 x the largest null score
    gr = detect_gr_events(scores, threshold)
    assert gr.events["iteration"].tolist() == [
        10,
        40,
        80,
    ]  # the first transition counts too: no baseline window
    assert gr.t_gr == 10 and gr.t_gr_max == 80
    assert gr.scores["event"].tolist() == [True, False, False, True, False, False, False, True, False]
    assert gr_threshold([], min_threshold=2.0) == 2.0 and gr_threshold([0.0, np.nan]) == 3.5
