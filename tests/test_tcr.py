"""TCR = mean over batch, time and units of (r_{t+1} - r_t)^2; optional time weights."""

import pytest
import torch

from rnngeom.tcr import tcr_penalty


def hand_traj():
    # B=1, T=3, N=2: differences (1, -2) then (0.5, 0)
    return torch.tensor([[[0.0, 1.0], [1.0, -1.0], [1.5, -1.0]]])


def test_hand_computed_value():
    # squares: 1, 4, 0.25, 0 -> mean over (T-1)*N = 4 entries = 5.25/4
    assert tcr_penalty(hand_traj()).item() == pytest.approx(5.25 / 4)


def test_batch_mean():
    r = torch.cat([hand_traj(), torch.zeros(1, 3, 2)])  # second trial contributes zeros
    assert tcr_penalty(r).item() == pytest.approx(5.25 / 8)


def test_constant_trajectory_is_zero():
    r = torch.ones(4, 10, 5) * torch.randn(4, 1, 5)
    assert tcr_penalty(r).item() == 0.0


def test_time_weight():
    r = hand_traj()
    # weight only the second difference: (0.25 + 0) / 2 units
    assert tcr_penalty(r, torch.tensor([0.0, 1.0])).item() == pytest.approx(0.125)
    # weighted mean: (2*5 + 1*0.25) / ((2 + 1) * 2)
    assert tcr_penalty(r, torch.tensor([2.0, 1.0])).item() == pytest.approx(10.25 / 6)
    # uniform weights give the unweighted mean
    r = torch.randn(3, 6, 4)
    torch.testing.assert_close(tcr_penalty(r, torch.full((5,), 0.3)), tcr_penalty(r))
    # [B, T-1] weights: per-trial windows
    w = torch.zeros(3, 5)
    w[1, 2:4] = 1.0
    d2 = (r[1, 3:5] - r[1, 2:4]) ** 2
    torch.testing.assert_close(tcr_penalty(r, w), d2.mean())
    # all-zero weight gives 0 (not nan)
    assert tcr_penalty(r, torch.zeros(5)).item() == 0.0


def test_bad_shapes():
    with pytest.raises(ValueError):
        tcr_penalty(torch.zeros(3, 4))
    with pytest.raises(ValueError):
        tcr_penalty(torch.zeros(2, 4, 3), torch.ones(4))


def test_single_step_is_zero():
    assert tcr_penalty(torch.randn(2, 1, 3)).item() == 0.0


def test_gradient_step_decreases_penalty():
    torch.manual_seed(0)
    r = torch.randn(2, 8, 4, requires_grad=True)
    p0 = tcr_penalty(r)
    p0.backward()
    with torch.no_grad():
        r2 = r - 0.05 * r.grad
    assert tcr_penalty(r2).item() < p0.item()
    # gradient is 2 (r_t - r_{t+1}) + 2 (r_t - r_{t-1}), over the number of terms
    n = 2 * 7 * 4
    d = r[:, 1:] - r[:, :-1]
    g = torch.zeros_like(r)
    g[:, 1:] += 2 * d / n
    g[:, :-1] -= 2 * d / n
    torch.testing.assert_close(r.grad, g.detach())
