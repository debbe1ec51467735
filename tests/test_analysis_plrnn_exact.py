"""Exact PLRNN fixed points: a hand-computed 2-unit system, agreement with the generic finder, exhaustive
versus region search, the input drive, and a real PLRNN model through linear_pieces()."""

import numpy as np
import torch

from rnngeom.analysis.fixed_points import find_fixed_points
from rnngeom.analysis.plrnn_exact import plrnn_fixed_points, plrnn_fixed_points_of
from rnngeom.models import PLRNN

# z' = 0.2 z - relu(other) + 1 for two mutually inhibiting units. By hand, region by region:
#   d=(1,1): 0.8 z1 + z2 = 1 = z1 + 0.8 z2      -> z = (5/9, 5/9), Jacobian [[.2,-1],[-1,.2]]:
#                                                  eig 1.2, -0.8 (saddle)
#   d=(1,0): 0.8 z1 = 1, 0.8 z2 = 1 - z1         -> z = (1.25, -0.3125), Jacobian [[.2,0],[-1,.2]]:
#                                                  eig .2, .2
#   d=(0,1): symmetric                          -> z = (-0.3125, 1.25) (stable)
#   d=(0,0): z = (1.25, 1.25) is not in its region (virtual)
A2, W2, H2 = [0.2, 0.2], [[0.0, -1.0], [-1.0, 0.0]], [1.0, 1.0]
HAND = {(-0.3125, 1.25): "stable", (1.25, -0.3125): "stable", (5 / 9, 5 / 9): "saddle"}


def as_dict(fps):
    return {tuple(np.round(p, 6)): k for p, k in zip(fps.positions, fps.kind)}


def hand_plrnn():
    m = PLRNN(n_in=1, n_hidden=2, n_out=1)
    with torch.no_grad():
        m.a.copy_(torch.tensor(A2))
        m.W.copy_(torch.tensor(W2))
        m.h.copy_(torch.tensor(H2))
    return m


def motif(n_pairs, coupling, seed):
    """Pairs of mutually inhibiting units (each pair: 2 stable + 1 saddle), weakly coupled at random."""
    rng = np.random.default_rng(seed)
    M = 2 * n_pairs
    W = np.kron(np.eye(n_pairs), W2) + coupling * rng.normal(size=(M, M))
    np.fill_diagonal(W, 0.0)
    return np.full(M, 0.2), W, np.ones(M)


def test_hand_computed_plrnn():
    fps = plrnn_fixed_points(A2, W2, H2)
    assert as_dict(fps) == {tuple(np.round(k, 6)): v for k, v in HAND.items()}
    saddle = fps.eigvals[fps.kind == "saddle"][0]
    np.testing.assert_allclose(sorted(saddle.real), [-0.8, 1.2], atol=1e-12)
    assert (fps.q < 1e-25).all()
    # the region search finds the same three
    assert as_dict(plrnn_fixed_points(A2, W2, H2, exhaustive_max=0)) == as_dict(fps)


def test_exact_solver_and_generic_finder_agree():
    m = hand_plrnn()
    exact = plrnn_fixed_points_of(m)
    starts = np.random.default_rng(0).uniform(-2, 2, (128, 2))
    generic = find_fixed_points(m, starts, n_iters=400, lm_steps=15)
    assert generic.kind.tolist() == exact.kind.tolist()
    np.testing.assert_allclose(generic.positions, exact.positions, atol=1e-6)
    np.testing.assert_allclose(np.abs(generic.eigvals), np.abs(exact.eigvals), atol=1e-6)


def test_exact_and_generic_agree_on_coupled_motif():
    a, W, h = motif(2, 0.05, seed=1)
    m = PLRNN(n_in=1, n_hidden=4, n_out=1)
    with torch.no_grad():
        for name, v in (("a", a), ("W", W), ("h", h)):
            getattr(m, name).copy_(torch.as_tensor(v))
    exact = plrnn_fixed_points_of(m)
    assert exact.counts()["stable"] == 4 and len(exact) == 9
    generic = find_fixed_points(
        m, np.random.default_rng(0).uniform(-2, 2, (256, 4)), n_iters=400, lm_steps=15
    )
    assert as_dict(generic) == as_dict(exact)


def test_region_search_matches_exhaustive_on_its_seeds():
    a, W, h = motif(5, 0.005, seed=3)  # M = 10: 3^5 = 243 points (2^5 stable) when the coupling is weak
    exhaustive = plrnn_fixed_points(a, W, h)
    assert len(exhaustive) == 243 and exhaustive.counts()["stable"] == 32
    search = plrnn_fixed_points(a, W, h, exhaustive_max=0, seed=0)
    ex, se = as_dict(exhaustive), as_dict(search)
    assert set(se) <= set(ex)  # every point found is exact
    assert sum(k == "stable" for k in se.values()) == 32  # the relaxation seeds find every stable point
    assert len(se) >= 0.9 * len(ex)
    again = plrnn_fixed_points(a, W, h, exhaustive_max=0, seed=0)
    assert np.array_equal(search.positions, again.positions)  # deterministic for a fixed seed


def test_input_drive_and_trajectory_seeds():
    # a single unit z' = 0.5 z + c (W = 0): the fixed point 2c is in the active region iff c > 0
    assert plrnn_fixed_points([0.5], [[0.0]], [0.0], c=[0.4]).positions.tolist() == [[0.8]]
    assert plrnn_fixed_points([0.5], [[0.0]], [0.0], c=[-0.4]).positions.tolist() == [[-0.8]]
    m = hand_plrnn()
    with torch.no_grad():
        m.C.fill_(0.0)
        m.C[0, 0] = 1.0  # input drives unit 1 only
    drive = plrnn_fixed_points_of(m, input=[2.0])  # unit 1 strongly driven: only its "winner" point remains
    assert drive.kind.tolist() == ["stable"] and drive.positions[0, 0] > 0 > drive.positions[0, 1]
    seeded = plrnn_fixed_points(A2, W2, H2, exhaustive_max=0, start_states=np.array([[1.0, -1.0]]))
    assert as_dict(seeded) == as_dict(plrnn_fixed_points(A2, W2, H2))
    assert len(plrnn_fixed_points([0.5, 0.5], [[0.0, 3.0], [3.0, 0.0]], [1.0, 1.0])) == 0  # no fixed point
