"""The hand-written BPTT gradients equal autograd through the model files, and ensemble members are
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


def require_compiled_loops():
    """Skip (naming the reason) where no C compiler builds rnngeom's compiled loops."""
    from rnngeom.learning.compiled import KernelUnavailable, library

    try:
        library()
    except KernelUnavailable as err:
        pytest.skip(f"compiled loops unavailable here: {err}")


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


def _rule(spec, K, hand_written, time_loop="auto"):
    model_spec = {k: v for k, v in spec.items()}
    members = [{"seed": k, "lambda_tcr": 0.7 * k + 0.1, "gain": 1.5} for k in range(K)]
    return get_rule("bptt")(model_spec, members, {"hand_written": hand_written, "time_loop": time_loop})


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_delay_window_goes_through_the_torch_pass_and_equals_autograd(name):
    """training.tcr_window: delay (TCR over some time pairs only): the hand-written torch pass takes it on a
    CPU (the NumPy and compiled passes state TCR over every pair), with autograd's gradients."""
    spec = SPECS[name]
    params, batch = _ensemble(spec, K=3)
    g = torch.Generator().manual_seed(5)
    batch.tcr_pairs = (torch.rand(3, 5, 5, generator=g) > 0.5).double()
    members = [{"seed": k, "lambda_tcr": 0.7 * k + 0.1, "gain": 1.5} for k in range(3)]
    rule = get_rule("bptt")
    fast = rule(dict(spec), members, {"hand_written": "auto"}, tcr_window="delay")
    slow = rule(dict(spec), members, {"hand_written": False}, tcr_window="delay")
    assert fast.time_loop == "none" or name == "lstm" and not fast._fused_lstm
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


@pytest.mark.parametrize("choice", [True, "auto"])
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


@pytest.mark.parametrize("time_loop", ["compiled", "numpy"])
@pytest.mark.parametrize(
    "name,n_hidden,batch_size",
    [(n, 7, 5) for n in ("leaky", "leaky_a1", "rank1", "plrnn", "lstm")]
    # 37 units, 7 sequences: the compiled product's register blocks (32 columns, row pairs) and its edges
    + [(n, 37, 7) for n in ("leaky", "rank1", "plrnn", "lstm")],
)
def test_cpu_auto_path_equals_autograd_through_the_model_file(name, n_hidden, batch_size, time_loop):
    """hand_written: auto on a CPU runs the leaky, rank-one and PLRNN passes in NumPy (bptt_cpu.py), their
    time loops, losses and weight products compiled in C or in NumPy (time_loop), and the LSTM in C
    (compiled) or through torch's fused LSTM kernel (numpy); the same gradients as autograd through the
    model files."""
    if time_loop == "compiled":
        require_compiled_loops()
    spec = {**SPECS[name], "n_hidden": n_hidden}
    params, batch = _ensemble(spec, K=3, batch_size=batch_size)
    fast, slow = _rule(spec, 3, "auto", time_loop), _rule(spec, 3, False)
    path = fast._fused_lstm if name == "lstm" else fast._numpy_on_cpu
    assert path and not slow.hand_written and not slow._fused_lstm
    assert fast.time_loop == time_loop
    lam = fast.lambdas(0).double()
    a, b = fast.gradients_for(params, batch, lam, 0), slow.gradients_for(params, batch, lam, 0)
    torch.testing.assert_close(a.task_loss, b.task_loss)
    torch.testing.assert_close(a.tcr, b.tcr)
    torch.testing.assert_close(a.activity_var, b.activity_var)
    assert set(a.grads) == set(b.grads) == set(params)
    for n in params:
        assert a.grads[n].dtype == params[n].dtype
        torch.testing.assert_close(a.grads[n], b.grads[n], rtol=1e-9, atol=1e-12, msg=n)
