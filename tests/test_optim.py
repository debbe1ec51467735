"""rnngeom.optim: the same updates as torch.optim.Adam bit for bit, the same state layout, and no compiler
import (what it exists for)."""

import json
import subprocess
import sys

import pytest
import torch

from rnngeom.optim import FusedAdam, adam_update


def _params(dtype):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(*shape, generator=g, dtype=dtype) for shape in [(3, 5), (5,), (2, 4, 4)]]


def _grads(params, step):
    g = torch.Generator().manual_seed(100 + step)
    # spread over magnitudes so that eps and the bias corrections matter
    return [torch.randn(p.shape, generator=g, dtype=p.dtype) * 10.0 ** (step % 5 - 3) for p in params]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_adam_equals_torch_fused_adam_bit_for_bit(dtype):
    ours, theirs = _params(dtype), _params(dtype)
    opt_ours = FusedAdam(ours, lr=3e-3)
    opt_theirs = torch.optim.Adam(theirs, lr=3e-3, fused=True)
    for step in range(30):
        for p, q, g in zip(ours, theirs, _grads(ours, step)):
            p.grad, q.grad = g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
        for p, q in zip(ours, theirs):
            assert torch.equal(p, q), f"step {step}"


def test_fused_adam_updates_each_member_of_a_stack_as_if_it_were_alone():
    """members=K: a [K, ...] stack's slices are updated exactly like K optimizers on [1, ...] tensors (the CPU
    kernel's vectorised loop and scalar tail round differently, so one [K, 3] tensor would not be)."""
    K = 7
    g = torch.Generator().manual_seed(3)
    stack = [torch.randn(K, *shape, generator=g) for shape in [(3,), (5, 3), (1,)]]
    alone = [[p[k : k + 1].clone() for p in stack] for k in range(K)]
    opt = FusedAdam(stack, lr=1e-2, members=K)
    opts = [FusedAdam(ps, lr=1e-2) for ps in alone]
    for step in range(20):
        grads = _grads(stack, step)
        for p, gr in zip(stack, grads):
            p.grad = gr
        opt.step()
        for k in range(K):
            for p, gr in zip(alone[k], grads):
                p.grad = gr[k : k + 1].clone()
            opts[k].step()
    for k in range(K):
        for p, q in zip(stack, alone[k]):
            assert torch.equal(p[k : k + 1], q), k


def test_fused_adam_state_round_trips_through_torch_optim_adams_layout():
    """A resume file written before (torch.optim.Adam's state dict) continues exactly, and ours loads back."""
    ours, theirs = _params(torch.float32), _params(torch.float32)
    opt_theirs = torch.optim.Adam(theirs, lr=1e-3, fused=True)
    for step in range(5):
        for q, g in zip(theirs, _grads(theirs, step)):
            q.grad = g
        opt_theirs.step()
    for p, q in zip(ours, theirs):
        p.data.copy_(q)
    opt_ours = FusedAdam(ours, lr=1e-3)
    opt_ours.load_state_dict(opt_theirs.state_dict())
    again = FusedAdam([p.clone() for p in ours], lr=1e-3)
    again.load_state_dict(opt_ours.state_dict())
    for step in range(5, 10):
        for p, q, r, g in zip(ours, theirs, again.params, _grads(ours, step)):
            p.grad, q.grad, r.grad = g.clone(), g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
        again.step()
    for p, q, r in zip(ours, theirs, again.params):
        assert torch.equal(p, q) and torch.equal(r, q)


def test_fused_adam_rejects_state_of_another_parameter_list():
    opt = FusedAdam(_params(torch.float32), lr=1e-3)
    other = torch.optim.Adam([torch.zeros(2)], lr=1e-3, fused=True)
    with pytest.raises(ValueError, match="different number of parameters"):
        opt.load_state_dict(other.state_dict())


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
    """The point of FusedAdam: a training job no longer pays torch._dynamo's import (1.5 s measured;
    torch.optim's constructor imported it). The analysis still does: torch.func.jacrev imports it."""
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
