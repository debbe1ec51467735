"""rnngeom.optim: torch.optim.Adam's and SGD's updates in public operations, an exact resume, and no
compiler import (what it exists for)."""

import copy
import json
import subprocess
import sys

import pytest
import torch

from rnngeom.optim import SGD, Adam, adam_update


def _params(dtype):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(*shape, generator=g, dtype=dtype) for shape in [(3, 5), (5,), (2, 4, 4)]]


def _grads(params, step):
    g = torch.Generator().manual_seed(100 + step)
    # spread over magnitudes so that eps and the bias corrections matter
    return [torch.randn(p.shape, generator=g, dtype=p.dtype) * 10.0 ** (step % 5 - 3) for p in params]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_equals_torch_optim_adam(dtype):
    """torch.optim.Adam's default (single-tensor) arithmetic, step for step, to its last bits."""
    ours, theirs = _params(dtype), _params(dtype)
    opt_ours = Adam(ours, lr=3e-3)
    opt_theirs = torch.optim.Adam(theirs, lr=3e-3, foreach=False)
    for step in range(30):
        for p, q, g in zip(ours, theirs, _grads(ours, step)):
            p.grad, q.grad = g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
        for p, q in zip(ours, theirs):
            assert torch.equal(p, q), f"step {step}"


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_equals_torch_optim_sgd(momentum):
    ours, theirs = _params(torch.float64), _params(torch.float64)
    opt_ours = SGD(ours, lr=0.05, momentum=momentum)
    opt_theirs = torch.optim.SGD(theirs, lr=0.05, momentum=momentum, foreach=False)
    for step in range(10):
        for p, q, g in zip(ours, theirs, _grads(ours, step)):
            p.grad, q.grad = g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-14)


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_a_resumed_optimizer_continues_exactly(kind):
    """state_dict / load_state_dict: an optimizer rebuilt from a saved state makes the same next steps, and
    the state of another optimizer or parameter list is refused."""
    make = (lambda ps: Adam(ps, lr=1e-3)) if kind == "adam" else (lambda ps: SGD(ps, lr=1e-2, momentum=0.9))
    ours = _params(torch.float32)
    opt = make(ours)
    for step in range(5):
        for p, g in zip(ours, _grads(ours, step)):
            p.grad = g
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    again_params = [p.clone() for p in ours]
    again = make(again_params)
    again.load_state_dict(saved)
    for step in range(5, 10):
        for p, q, g in zip(ours, again_params, _grads(ours, step)):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        again.step()
    for p, q in zip(ours, again_params):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="not"):
        (SGD(ours, lr=0.1) if kind == "adam" else Adam(ours, lr=0.1)).load_state_dict(saved)
    if kind == "adam":
        with pytest.raises(ValueError, match="different number of parameters"):
            Adam(ours[:1], lr=0.1).load_state_dict(saved)


def test_adam_update_equals_torch_optim_adam_default_path_with_a_decaying_lr():
    x_ours = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x_theirs = x_ours.clone().requires_grad_(True)
    opt = torch.optim.Adam([x_theirs], lr=1e-2)
    m, v, lr = torch.zeros_like(x_ours), torch.zeros_like(x_ours), 1e-2
    for step in range(1, 40):
        g = torch.sin(3.0 * x_ours) * 10.0 ** (step % 4 - 2)
        x_theirs.grad = g.clone()
        opt.step()
        for group in opt.param_groups:
            group["lr"] *= 0.97
        adam_update(x_ours, g, m, v, step=step, lr=lr)
        lr *= 0.97
        assert torch.equal(x_ours, x_theirs.detach()), f"step {step}"


def test_training_does_not_import_the_compiler_stack(tmp_path, flipflop_data, small_settings):
    """A training job does not pay torch._dynamo's import (1.5 s measured; torch.optim's constructor imports
    it). The analysis still does: torch.func.jacrev imports it."""
    code = """
import json, sys
from rnngeom.train import train_run
settings, train, test, out = json.loads(sys.argv[1])
train_run(settings, train, test, out)
print(json.dumps("torch._dynamo" in sys.modules))
"""
    data = [str(flipflop_data["train"]), str(flipflop_data["test"])]
    args = json.dumps([small_settings, *data, str(tmp_path)])
    out = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "metrics.tsv").exists()
    assert out.stdout.strip() == "false"
