"""The fast passes (rnngeom.learning.passes: one batched torch pass per recurrence) give autograd's gradients
through the model files, in float64, with and without a TCR window and model noise; ensemble members are
independent."""

import pytest
import torch

from rnngeom.learning import Batch, get_rule
from rnngeom.models import build_model

SPECS = {
    "leaky": {"arch": "leaky", "n_in": 3, "n_out": 2, "n_hidden": 7, "alpha": 0.4},
    "leaky_a1": {"arch": "leaky", "n_in": 3, "n_out": 2, "n_hidden": 7, "alpha": 1.0},
    "rank1": {"arch": "rank1", "n_in": 3, "n_out": 2, "n_hidden": 7, "alpha": 0.5},
    "plrnn": {"arch": "plrnn", "n_in": 3, "n_out": 2, "n_hidden": 7, "a_init": 0.9},
    "lstm": {"arch": "lstm", "n_in": 3, "n_out": 2, "n_hidden": 7, "forget_bias": 1.0},
}


def _ensemble(spec, K, dtype=torch.float64, batch_size=5):
    models = []
    for k in range(K):
        torch.manual_seed(k)
        models.append(build_model({**spec, "gain": 1.5}).to(dtype))
    params = {
        n: torch.stack([m.get_parameter(n).detach() for m in models]) for n, _ in models[0].named_parameters()
    }
    g = torch.Generator().manual_seed(99)
    B, T = batch_size, 6
    inputs = torch.randn(K, B, T, spec["n_in"], generator=g, dtype=dtype)
    targets = torch.randn(K, B, T, spec["n_out"], generator=g, dtype=dtype)
    mask = (torch.rand(K, B, T, spec["n_out"], generator=g) > 0.3).to(dtype)
    return params, Batch(inputs, targets, mask)


def _rule(spec, K, hand_written, tcr_window="all"):
    model_spec = {k: v for k, v in spec.items()}
    members = [{"seed": k, "lambda_tcr": 0.7 * k + 0.1, "gain": 1.5} for k in range(K)]
    return get_rule("bptt")(model_spec, members, {"hand_written": hand_written}, tcr_window)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_delay_window_equals_autograd(name):
    """training.tcr_window: delay (TCR over some pairs only): the fast pass gives autograd's gradients."""
    spec = SPECS[name]
    params, batch = _ensemble(spec, K=3)
    g = torch.Generator().manual_seed(5)
    batch.tcr_pairs = (torch.rand(3, 5, 5, generator=g) > 0.5).double()
    fast, slow = _rule(spec, 3, True, "delay"), _rule(spec, 3, False, "delay")
    lam = fast.lambdas(0).double()
    a, b = fast.gradients_for(params, batch, lam, 0), slow.gradients_for(params, batch, lam, 0)
    torch.testing.assert_close(a.tcr, b.tcr)
    for n in params:
        torch.testing.assert_close(a.grads[n], b.grads[n], msg=n)
    everywhere = slow.gradients_for(params, Batch(batch.inputs, batch.targets, batch.mask), lam, 0)
    assert not torch.allclose(everywhere.tcr, b.tcr)  # the window changes what is penalised


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hand_written_gradients_equal_autograd(name):
    spec = SPECS[name]
    params, batch = _ensemble(spec, K=3)
    fast, slow = _rule(spec, 3, True), _rule(spec, 3, False)
    assert fast.hand_written and not slow.hand_written
    lam = fast.lambdas(0).double()
    a, b = fast.gradients_for(params, batch, lam, 0), slow.gradients_for(params, batch, lam, 0)
    torch.testing.assert_close(a.task_loss, b.task_loss)
    torch.testing.assert_close(a.tcr, b.tcr)
    torch.testing.assert_close(a.activity_var, b.activity_var)
    assert set(a.grads) == set(b.grads) == set(params)
    for n in params:
        torch.testing.assert_close(a.grads[n], b.grads[n], rtol=1e-9, atol=1e-12, msg=n)


@pytest.mark.parametrize("choice", [True, False])
@pytest.mark.parametrize("name", ["leaky", "rank1", "plrnn", "lstm"])
def test_members_do_not_depend_on_the_ensemble(name, choice):
    """Member k's float32 gradients are the same (to float32 rounding: batched matmuls may block differently
    for different K) whether it is computed alone or with others; nothing leaks between members."""
    spec = SPECS[name]
    params, batch = _ensemble(spec, K=4, dtype=torch.float32)
    rule = _rule(spec, 4, choice)
    full = rule.gradients(params, batch, 0)
    for k in (0, 2):
        one = {n: p[k : k + 1] for n, p in params.items()}
        sub = Batch(*(t[k : k + 1] for t in (batch.inputs, batch.targets, batch.mask)))
        alone = _rule(spec, 1, choice)
        alone._lambdas = rule.lambdas(0)[k : k + 1]
        res = alone.gradients(one, sub, 0)
        torch.testing.assert_close(res.task_loss[0], full.task_loss[k], rtol=1e-6, atol=0)
        for n in params:
            torch.testing.assert_close(res.grads[n][0], full.grads[n][k], rtol=1e-5, atol=1e-7, msg=n)


@pytest.mark.parametrize("name", ["leaky", "rank1"])
def test_model_noise_enters_the_fast_pass_as_an_input(name):
    """With noise_std > 0 the leaky and rank-one fast pass draw ξ_t from torch's global RNG and add it to x_t;
    the gradient given that draw is autograd's through the same dynamics with ξ added as an input."""
    from rnngeom.learning.passes import leaky_pass

    spec = SPECS[name]
    params, batch = _ensemble(spec, K=2)
    T, N = batch.inputs.shape[2], spec["n_hidden"]
    xi = 0.1 * torch.randn(T, 2, batch.inputs.shape[1], N, dtype=torch.float64)
    lam = torch.tensor([0.3, 0.0], dtype=torch.float64)
    fast = leaky_pass(params, batch, lam, spec["alpha"], name == "rank1", noise=xi)
    from torch.func import functional_call

    class WithNoise(torch.nn.Module):  # the model file's step, ξ_t added to x_t
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, inputs, noise):
            x = torch.zeros(inputs.shape[0], N, dtype=inputs.dtype)
            rs = []
            for t in range(inputs.shape[1]):
                x = self.model.step(x, inputs[:, t]) + noise[t]
                rs.append(self.model.activity(x))
            r = torch.stack(rs, dim=1)
            return self.model.readout(r), r

    wrapper = WithNoise(build_model({**spec, "gain": 1.5}).double())
    for k in range(2):
        member = {n: params[n][k].clone().requires_grad_(True) for n in params}
        y, r = functional_call(
            wrapper, {f"model.{n}": v for n, v in member.items()}, (batch.inputs[k], xi[:, k])
        )
        loss = (batch.mask[k] * (y - batch.targets[k]) ** 2).sum() / batch.mask[k].sum()
        loss = loss + lam[k] * ((r[:, 1:] - r[:, :-1]) ** 2).mean()
        grads = torch.autograd.grad(loss, [member[n] for n in params])
        for n, g in zip(params, grads):
            torch.testing.assert_close(fast.grads[n][k], g, rtol=1e-9, atol=1e-12, msg=n)
    rule = _rule({**spec, "noise_std": 0.5}, 2, True)
    torch.manual_seed(0)
    a = rule.gradients_for(params, batch, lam, 0)
    torch.manual_seed(0)
    b = rule.gradients_for(params, batch, lam, 0)
    torch.manual_seed(1)
    c = rule.gradients_for(params, batch, lam, 0)
    torch.testing.assert_close(a.grads["W_in"], b.grads["W_in"])  # the draw follows the global seed
    assert not torch.allclose(a.grads["W_in"], c.grads["W_in"])
