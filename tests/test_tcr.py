"""TCR = mean over batch, time and units of (r_{t+1} - r_t)^2 (per member or one scalar), and its gradient."""

import pytest
import torch

from rnngeom.tcr import tcr_grad, tcr_penalty, tcr_time_first


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


def test_bad_shapes():
    with pytest.raises(ValueError, match="time and a unit axis"):
        tcr_penalty(torch.zeros(4))


def test_single_step_is_zero():
    assert tcr_penalty(torch.randn(2, 1, 3)).item() == 0.0
    assert torch.equal(tcr_penalty(torch.randn(4, 2, 1, 3), member_dim=0), torch.zeros(4))
    assert torch.equal(tcr_grad(torch.randn(4, 2, 1, 3), member_dim=0), torch.zeros(4, 2, 1, 3))


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


def test_per_member_and_time_major_layouts():
    # [K, B, T, N]: one TCR per member, each the scalar TCR of that member's [B, T, N] activity ...
    torch.manual_seed(1)
    r = torch.randn(3, 2, 6, 4, dtype=torch.float64)
    per_member = tcr_penalty(r, member_dim=0)
    assert per_member.shape == (3,)
    torch.testing.assert_close(per_member, torch.stack([tcr_penalty(r[k]) for k in range(3)]))
    assert len(set(per_member.tolist())) == 3  # the members really differ
    # ... and the same numbers from the time-major layout [T, K, B, N] the hand-written BPTT keeps
    time_major = r.permute(2, 0, 1, 3)
    torch.testing.assert_close(tcr_penalty(time_major, time_dim=0, member_dim=1), per_member)
    # a [T, N] trajectory is one trial
    torch.testing.assert_close(tcr_penalty(r[0, 0]), tcr_penalty(r[0, :1]))


@pytest.mark.parametrize("layout", ["scalar", "members", "time_major"])
def test_gradient_equals_autograd(layout):
    torch.manual_seed(2)
    lam = torch.tensor([0.5, 2.0, 0.0], dtype=torch.float64)
    r = torch.randn(3, 2, 7, 4, dtype=torch.float64)
    if layout == "time_major":
        r = r.permute(2, 0, 1, 3).contiguous()
    kw = {"scalar": {}, "members": {"member_dim": 0}, "time_major": {"time_dim": 0, "member_dim": 1}}[layout]
    weight = 0.7 if layout == "scalar" else lam
    leaf = r.clone().requires_grad_(True)
    (tcr_penalty(leaf, **kw) * weight).sum().backward()
    torch.testing.assert_close(tcr_grad(r, weight=weight, **kw), leaf.grad, rtol=1e-12, atol=1e-15)
    # with out=, the gradient is added onto what is there
    base = torch.randn_like(r)
    out = base.clone()
    assert tcr_grad(r, weight=weight, out=out, **kw) is out
    torch.testing.assert_close(out, base + leaf.grad, rtol=1e-12, atol=1e-15)


def test_delay_window_counts_only_the_weighted_pairs():
    """training.tcr_window: delay weights the time pairs: TCR is the mean over the weighted ones, and its
    gradient (per member, any layout) equals autograd's."""
    torch.manual_seed(3)
    r = torch.randn(2, 3, 6, 4, dtype=torch.float64, requires_grad=True)  # [K, B, T, N]
    w = (torch.rand(2, 3, 5) > 0.4).double()  # [K, B, T-1] pairs
    w[1] = 0.0
    w[1, 0, 2] = 1.0  # member 1: one pair only
    d2 = (r[:, :, 1:] - r[:, :, :-1]) ** 2
    expected = torch.stack([(w[k, ..., None] * d2[k]).sum() / (4 * w[k].sum()) for k in range(2)])
    pen = tcr_penalty(r, member_dim=0, pair_weight=w[..., None])
    torch.testing.assert_close(pen, expected)
    torch.testing.assert_close(pen[1], d2[1, 0, 2].mean())
    lam = torch.tensor([0.3, 2.0], dtype=torch.float64)
    (lam * pen).sum().backward()
    grad = tcr_grad(r.detach(), member_dim=0, weight=lam, pair_weight=w[..., None])
    torch.testing.assert_close(grad, r.grad)
    # all pairs weighted 1 is the plain TCR; time-major [T, K, B, N] gives the same numbers
    ones = torch.ones(2, 3, 5, 1, dtype=torch.float64)
    torch.testing.assert_close(tcr_penalty(r, member_dim=0, pair_weight=ones), tcr_penalty(r, member_dim=0))
    tm = r.detach().permute(2, 0, 1, 3)
    torch.testing.assert_close(
        tcr_penalty(tm, time_dim=0, member_dim=1, pair_weight=w.permute(2, 0, 1)[..., None]), pen.detach()
    )


@pytest.mark.parametrize("windowed", [False, True])
def test_the_fast_passes_form_equals_penalty_and_grad(windowed):
    """tcr_time_first (time-first [T, K, B, N], one difference tensor) gives tcr_penalty's values and adds
    tcr_grad's gradient, with and without a pair window; with every weight 0 it adds nothing."""
    torch.manual_seed(4)
    r = torch.randn(7, 3, 2, 5, dtype=torch.float64)
    lam = torch.tensor([0.3, 0.0, 2.0], dtype=torch.float64)
    w = (torch.rand(6, 3, 2, 1) > 0.5).double() if windowed else None
    out = torch.randn_like(r)
    expected = out + tcr_grad(r, time_dim=0, member_dim=1, weight=lam, pair_weight=w)
    pen = tcr_time_first(r, lam, out=out, pair_weight=w)
    torch.testing.assert_close(pen, tcr_penalty(r, time_dim=0, member_dim=1, pair_weight=w))
    torch.testing.assert_close(out, expected)
    untouched = out.clone()
    tcr_time_first(r, torch.zeros(3, dtype=torch.float64), out=out, pair_weight=w)
    assert torch.equal(out, untouched)
