"""The calibrated GR instrument on planted networks: covering starts find the whole fixed-point set, a network
re-analysed with other start seeds never scores an event, and a planted restructuring (a pitchfork: a new
attractor pair) is detected at the checkpoint where it happens."""

import numpy as np
import pandas as pd
import pytest
import torch

from rnngeom.analysis.gr_events import gr_threshold
from rnngeom.analysis.pca import PCA
from rnngeom.analysis.run_analysis import (
    analyse_run,
    fixed_points_of,
    reanalysis_scores,
    resolve_settings,
    run_starts,
    trajectories,
)
from rnngeom.models import build_model

SETTINGS = {
    "n_trials": 16,
    "n_starts": 48,
    "num_threads": 1,
    "input": "zeros",
    "fixed_points": {"lm_steps": 12},
}


def pulses(n_in, n_trials=16, T=50, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n_trials, T, n_in)
    return torch.as_tensor(((rng.random(shape) < 0.1) * rng.choice([-1.0, 1.0], shape)).astype(np.float32))


def leaky(n_hidden, self_weights, seed=0, gain=0.3, n_in=2):
    """Leaky RNN (α = 0.5) whose first len(self_weights) units have the given self-coupling w (bistable for
    w > 1: x = w tanh(x) has three roots), driven by input channel k -> unit k; the others are weak noise."""
    torch.manual_seed(seed)
    model = build_model(
        {"arch": "leaky", "n_in": n_in, "n_out": 2, "n_hidden": n_hidden, "gain": gain, "alpha": 0.5}
    )
    k = len(self_weights)
    with torch.no_grad():
        model.W[:k, :] = 0.0
        model.W[:, :k] = 0.0
        model.W[range(k), range(k)] = torch.as_tensor(self_weights, dtype=model.W.dtype)
        model.b.zero_()
        model.W_in.zero_()
        model.W_in[range(min(k, n_in)), range(min(k, n_in))] = 4.0
    return model


class Sequence:
    """Checkpoints-like view of a list of models (what analyse_run needs)."""

    def __init__(self, models, iterations, task=None):
        self.models = dict(zip(iterations, models))
        self.iterations = list(iterations)
        self.run = {"task": task} if task else {}

    def model_at(self, it):
        return self.models[it]


def visited_states(model, n_in):
    states, _ = trajectories(model, pulses(n_in))
    return states.reshape(-1, states.shape[-1])


def test_covering_starts_find_the_fixed_points_trajectories_never_visit():
    """Two bistable units: 3 x 3 = 9 fixed points (4 stable, 4 saddles, 1 unstable). Trajectories kicked once
    settle in the 4 stable corners: starts on them find only those; covering starts find the rest."""
    model = leaky(2, [2.0, 2.0])
    kicks = np.zeros((16, 50, 2), np.float32)
    kicks[:, 0] = np.random.default_rng(0).choice([-1.0, 1.0], (16, 2))
    states, _ = trajectories(model, torch.as_tensor(kicks))
    cfg = resolve_settings({**SETTINGS, "n_starts": 64, "covering_frac": 0.0})
    on_path = fixed_points_of(
        [model],
        [run_starts(states.reshape(-1, 2), cfg, seed=0)],
        np.zeros(2),
        cfg,
        seed=0,
        device=None,
        exact=False,
    )[0]
    assert on_path.counts() == {"stable": 4, "saddle": 0, "unstable": 0, "slow": 0}
    covering = []
    for seed in range(3):
        cfg = resolve_settings({**SETTINGS, "n_starts": 64, "covering_frac": 0.5, "seed": seed})
        starts = run_starts(states.reshape(-1, 2), cfg, seed=seed)
        covering.append(
            fixed_points_of([model], [starts], np.zeros(2), cfg, seed=seed, device=None, exact=False)[
                0
            ].counts()
        )
    assert all(c["stable"] == 4 and c["saddle"] >= 3 and c["slow"] == 0 for c in covering), covering
    assert sum(c == {"stable": 4, "saddle": 4, "unstable": 1, "slow": 0} for c in covering) >= 2, covering


@pytest.mark.parametrize(
    "model",
    [
        leaky(
            6, [2.0, 2.0, 2.0], n_in=3
        ),  # the 3-bit flip-flop structure: 27 fixed points, saddles are hard to find
        leaky(8, [], seed=1, gain=1.6),  # a random chaotic-gain network
        leaky(8, [1.8, 1.8], seed=2, gain=0.8),
    ],
    ids=["flipflop3", "random_g1.6", "two_bits_in_noise"],
)
def test_reanalysis_with_other_start_seeds_is_never_an_event(model):
    """Calibrate on 4 re-analyses (as the pipeline does per null checkpoint), then re-analyse the same network
    with 8 further start seeds: none of their scores against the main analysis reaches the threshold."""
    n_in = model.n_in
    cfg = resolve_settings(SETTINGS)
    visited = visited_states(model, n_in)
    pca = PCA.fit(visited, 3)
    main = fixed_points_of(
        [model],
        [run_starts(visited, cfg, cfg["seed"])],
        np.zeros(n_in),
        cfg,
        seed=0,
        device=None,
        exact=False,
    )[0]
    null = reanalysis_scores(model, main, visited, np.zeros(n_in), pca, cfg, range(1, 5))
    threshold = gr_threshold(null, **{k: cfg["gr_null"][k] for k in ("margin", "min_threshold")})
    held_out = reanalysis_scores(model, main, visited, np.zeros(n_in), pca, cfg, range(5, 13))
    assert max(held_out) <= threshold, (null, held_out)


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_pitchfork_is_the_only_event(tmp_path, seed):
    """Unit 0's self-coupling grows through 1 between checkpoints 40 and 50: one stable point becomes an
    attractor pair and a saddle; before and after, the points only drift a little."""
    weights = [0.5, 0.6, 0.7, 0.8, 0.9, 1.6, 1.7, 1.8]
    its = list(range(0, 80, 10))
    models = [leaky(5, [w, 1.5], seed=3) for w in weights]
    inputs = pulses(2).numpy()
    result = analyse_run(Sequence(models, its), inputs, tmp_path, {**SETTINGS, "seed": seed})
    scores = pd.read_csv(tmp_path / "gr_scores.tsv", sep="\t")
    assert result["t_GR"] == 50 and result["t_GR_max"] == 50 and result["n_gr_events"] == 1, scores
    assert scores["event"].tolist() == [it == 50 for it in its[1:]]
    assert np.allclose(scores["null_q"], result["gr_threshold"]) and result["gr_noise_floor"] >= 0


def test_task_resting_input_is_the_default_and_recorded(tmp_path, monkeypatch):
    """input "task" asks the run's task for its resting input (here a stand-in task) and records it."""
    import rnngeom.tasks
    from rnngeom.tasks.base import TaskData

    seen = {}

    class StandIn:
        def resting_input(self, data):
            seen["n_trials"] = data.n_trials
            return np.array([0.0, 0.5])

    monkeypatch.setattr(rnngeom.tasks, "get_task", lambda name: seen.setdefault("name", name) and StandIn())
    model = leaky(3, [1.5])
    inputs = pulses(2).numpy()
    data = TaskData(inputs=inputs, targets=np.zeros_like(inputs), mask=np.ones_like(inputs))
    settings = {k: v for k, v in SETTINGS.items() if k != "input"}
    result = analyse_run(Sequence([model, model], [0, 10], task="delayed_addition"), data, tmp_path, settings)
    assert seen == {"name": "delayed_addition", "n_trials": 16}
    assert result["fixed_point_input"] == [0.0, 0.5] and result["fixed_point_input_source"] == "task"
    # the fixed point of unit 1 (no self-coupling, driven by 4 x 0.5) moved off the origin: x = tanh(x)·0 + 2
    fp = pd.read_csv(tmp_path / "fixed_points.tsv", sep="\t")
    assert len(fp) >= 1
    with pytest.raises(ValueError, match="task name"):
        analyse_run(Sequence([model], [0]), data, tmp_path, settings)
    with pytest.raises(ValueError, match="2 finite numbers"):
        analyse_run(Sequence([model], [0]), data, tmp_path, {**settings, "input": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="'task', 'zeros' or a list"):
        resolve_settings({"input": "mean"})
