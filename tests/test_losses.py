"""The masked MSE: scalar or per member, in any layout, and its gradient with respect to the outputs."""

import pytest
import torch

from rnngeom.losses import masked_mse, masked_mse_grad


def _ensemble(K=3, B=4, T=5, n_out=2):
    g = torch.Generator().manual_seed(0)
    y = torch.randn(K, B, T, n_out, generator=g, dtype=torch.float64)
    target = torch.randn(K, B, T, n_out, generator=g, dtype=torch.float64)
    mask = (torch.rand(K, B, T, n_out, generator=g) > 0.4).to(torch.float64)
    return y, target, mask


def test_masked_entries_do_not_count():
    y = torch.tensor([[[1.0], [5.0]]])
    t = torch.tensor([[[0.0], [0.0]]])
    m = torch.tensor([[[1.0], [0.0]]])
    assert masked_mse(y, t, m).item() == pytest.approx(1.0)
    assert masked_mse(y, t, torch.zeros_like(m)).item() == 0.0  # nothing scored: 0, not nan
    assert torch.equal(masked_mse_grad(y, t, m), torch.tensor([[[2.0], [0.0]]]))


def test_per_member_and_time_major_layouts():
    y, t, m = _ensemble()
    per_member = masked_mse(y, t, m, member_dim=0)
    assert per_member.shape == (3,)
    torch.testing.assert_close(per_member, torch.stack([masked_mse(y[k], t[k], m[k]) for k in range(3)]))
    tm = [a.permute(2, 0, 1, 3) for a in (y, t, m)]  # [T, K, B, O]
    torch.testing.assert_close(masked_mse(*tm, member_dim=1), per_member)
    grad_members = masked_mse_grad(y, t, m, member_dim=0)
    torch.testing.assert_close(masked_mse_grad(*tm, member_dim=1), grad_members.permute(2, 0, 1, 3))


@pytest.mark.parametrize("member_dim", [None, 0])
def test_gradient_equals_autograd(member_dim):
    y, t, m = _ensemble()
    leaf = y.clone().requires_grad_(True)
    masked_mse(leaf, t, m, member_dim=member_dim).sum().backward()
    grad = masked_mse_grad(y, t, m, member_dim=member_dim)
    torch.testing.assert_close(grad, leaf.grad, rtol=1e-12, atol=1e-15)
    assert leaf.grad[m == 0].abs().max() == 0 and leaf.grad[m == 1].abs().min() > 0
