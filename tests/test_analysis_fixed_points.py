"""Generic fixed/slow-point finder on planted systems with known answers (linear map, 1-D bistable map,
3-bit flip-flop-style network, LSTM with a known point), batching over models, and determinism."""

import numpy as np
import pytest
import torch

from rnngeom.analysis.fixed_points import (
    FixedPointSet,
    deduplicate,
    find_fixed_points,
    find_fixed_points_batched,
    jacobian_at,
    sample_starts,
    speed_at,
    stability_kind,
)
from rnngeom.models import LSTM, build_model
from rnngeom.models.base import RecurrentModel

A_STAR = 0.9575040240772687  # the positive root of a = tanh(2a)
FAST = dict(n_iters=400, lm_steps=15)  # enough for these small systems


class LinearMap(RecurrentModel):
    """x' = A x + b + s (input s of the state's size): one fixed point (I - A)^-1 (b + s), eigenvalues of
    A."""

    arch = "test_linear"

    def __init__(self, A, b):
        super().__init__(len(b), len(b), 1)
        self.A = torch.nn.Parameter(torch.as_tensor(A, dtype=torch.float32))
        self.b = torch.nn.Parameter(torch.as_tensor(b, dtype=torch.float32))

    def step(self, x, s):
        return x @ self.A.T + self.b + s

    def activity(self, x):
        return x


class TanhUnits(RecurrentModel):
    """x' = tanh(w x), independent units: each is bistable (±A_STAR stable, 0 unstable) for w = 2."""

    arch = "test_tanh"

    def __init__(self, n, w=2.0):
        super().__init__(1, n, 1)
        self.W = torch.nn.Parameter(w * torch.eye(n))

    def step(self, x, s):
        return torch.tanh(x @ self.W.T)

    def activity(self, x):
        return x


def uniform_starts(n, dim, half_width=1.5, seed=0):
    return np.random.default_rng(seed).uniform(-half_width, half_width, (n, dim))


def test_linear_map_has_one_known_fixed_point():
    A = np.array([[0.5, 0.2], [-0.1, 0.3]])
    b = np.array([1.0, -1.0])
    model = LinearMap(A, b)
    fps = find_fixed_points(model, uniform_starts(64, 2, 3.0), **FAST)
    np.testing.assert_allclose(jacobian_at(model, fps.positions)[0], A, atol=1e-7)
    assert speed_at(model, fps.positions)[0] < 1e-20 and speed_at(model, [[0.0, 0.0]])[0] == pytest.approx(
        1.0
    )
    assert len(fps) == 1
    np.testing.assert_allclose(fps.positions[0], np.linalg.solve(np.eye(2) - A, b), atol=1e-5)
    np.testing.assert_allclose(
        np.sort(np.abs(fps.eigvals[0])), np.sort(np.abs(np.linalg.eigvals(A))), atol=1e-6
    )
    assert fps.kind.tolist() == ["stable"] and fps.q[0] < 1e-10


def test_bistable_1d_map_two_stable_one_unstable():
    fps = find_fixed_points(TanhUnits(1), uniform_starts(64, 1), **FAST)
    assert fps.kind.tolist() == ["stable", "stable", "unstable"]  # canonical order: kind, then position
    np.testing.assert_allclose(fps.positions[:, 0], [-A_STAR, A_STAR, 0.0], atol=1e-6)
    np.testing.assert_allclose(np.abs(fps.eigvals[:, 0]), [2 * (1 - A_STAR**2)] * 2 + [2.0], atol=1e-5)


def test_flipflop_style_network_has_eight_stable_points():
    fps = find_fixed_points(TanhUnits(3), uniform_starts(256, 3), **FAST)
    stable = fps.positions[fps.kind == "stable"]
    assert len(stable) == 8
    np.testing.assert_allclose(np.abs(stable), A_STAR, atol=1e-6)
    assert len({tuple(np.sign(p)) for p in stable}) == 8  # all eight corners
    # Every other point found is one of the 19 others of the 3^3 grid (saddles and the unstable origin).
    others = fps.positions[fps.kind != "stable"]
    assert np.allclose(
        np.min(np.abs(np.abs(others[..., None]) - np.array([0.0, A_STAR])), axis=-1), 0, atol=1e-6
    )
    assert set(fps.kind[fps.kind != "stable"]) <= {"saddle", "unstable"}
    counts = fps.counts()
    assert counts["unstable"] <= 1 and counts["saddle"] <= 18 and counts["slow"] == 0


def test_lstm_with_zero_weights_has_known_fixed_point():
    N, bg = 4, 0.7
    m = LSTM(n_in=2, n_hidden=N, n_out=1)
    with torch.no_grad():
        m.W_ih.zero_()
        m.W_hh.zero_()
        m.b.zero_()
        m.b[2 * N : 3 * N] = bg  # candidate g = tanh(bg); gates i = f = o = 1/2
    c_star = np.tanh(bg)  # c = c/2 + tanh(bg)/2
    h_star = 0.5 * np.tanh(c_star)
    fps = find_fixed_points(m, np.random.default_rng(1).normal(0, 1, (64, 2 * N)), **FAST)
    assert len(fps) == 1 and fps.kind[0] == "stable"
    np.testing.assert_allclose(fps.positions[0], [h_star] * N + [c_star] * N, atol=1e-6)
    np.testing.assert_allclose(np.sort(np.abs(fps.eigvals[0])), [0.0] * N + [0.5] * N, atol=1e-6)


def test_constant_input_moves_the_fixed_point():
    m = LinearMap(np.zeros((2, 2)), np.zeros(2))
    fps = find_fixed_points(m, uniform_starts(16, 2), input=[0.3, -0.2], **FAST)
    np.testing.assert_allclose(fps.positions[0], [0.3, -0.2], atol=1e-6)
    with pytest.raises(ValueError, match="input has 3 entries"):
        find_fixed_points(m, uniform_starts(4, 2), input=[1, 2, 3], **FAST)


def test_batched_over_models_equals_one_at_a_time_and_is_deterministic():
    torch.manual_seed(0)
    models = [
        build_model({"arch": "leaky", "n_in": 2, "n_out": 1, "n_hidden": 10, "gain": g}).eval()
        for g in (0.5, 1.8)
    ]
    starts = np.stack([uniform_starts(32, 10, 1.0, seed=k) for k in range(2)])
    batched = find_fixed_points_batched(models, starts, **FAST)
    for model, st, fb in zip(models, starts, batched):
        single = find_fixed_points(model, st, **FAST)
        assert single.kind.tolist() == fb.kind.tolist()
        np.testing.assert_allclose(single.positions, fb.positions, atol=1e-6)
    again = find_fixed_points_batched(models, starts, **FAST)
    for f1, f2 in zip(batched, again):
        assert np.array_equal(f1.positions, f2.positions) and f1.kind.tolist() == f2.kind.tolist()
    assert batched[0].kind.tolist() == ["stable"]  # a weakly coupled leaky net: only the origin-ish point


def test_slow_point_is_reported_as_slow():
    # x' = x + 1e-3 + x²/2 has no fixed point but a speed minimum at x = 0 with q = ½ (1e-3)² = 5e-7:
    # a slow point (the ghost of a saddle-node bifurcation).
    class Ghost(RecurrentModel):
        arch = "test_ghost"

        def __init__(self):
            super().__init__(1, 1, 1)
            self.eps = torch.nn.Parameter(torch.tensor(1e-3))

        def step(self, x, s):
            return x + self.eps + 0.5 * x**2

        def activity(self, x):
            return x

    fps = find_fixed_points(Ghost(), uniform_starts(16, 1, 0.5), **FAST)
    assert fps.kind.tolist() == ["slow"]
    assert abs(fps.positions[0, 0]) < 1e-4 and fps.q[0] == pytest.approx(5e-7, rel=1e-3)
    assert len(find_fixed_points(Ghost(), uniform_starts(16, 1, 0.5), slow_q=1e-7, **FAST)) == 0


def test_helpers():
    assert stability_kind(np.array([[0.5, -0.9], [1.5, 0.2], [2.0, -3.0]])).tolist() == [
        "stable",
        "saddle",
        "unstable",
    ]
    pos = np.array([[0.0, 0.0], [0.001, 0.0], [1.0, 0.0]])
    assert sorted(deduplicate(pos, np.array([3.0, 1.0, 2.0]), 0.01).tolist()) == [1, 2]  # lower q wins
    states = np.arange(40.0).reshape(2, 10, 2)
    s1, s2 = sample_starts(states, 8, 0.1, seed=5), sample_starts(states, 8, 0.1, seed=5)
    assert s1.shape == (8, 2) and np.array_equal(s1, s2)
    assert sample_starts(states, 100, 0.0, seed=0).shape == (
        100,
        2,
    )  # more starts than states: with replacement
    empty = FixedPointSet.empty(3)
    assert len(empty) == 0 and list(empty.to_frame().columns) == [
        "point_id",
        "q",
        "max_abs_eig",
        "n_unstable_modes",
        "kind",
    ]
    with pytest.raises(ValueError):
        FixedPointSet(np.zeros((2, 3)), np.zeros(1), np.zeros((2, 3)), ["stable", "stable"])
