"""Adam and SGD over a fixed list of tensors whose ``.grad`` the caller sets before each ``step()``, in plain
public torch operations: torch.optim.Adam's single-tensor arithmetic (tests/test_optim.py compares it with
torch.optim.Adam), without the torch.optim machinery (whose constructor imports torch's compiler stack,
seconds per process, paid by every training job for nothing) and without its hooks.

The trainer's parameters are [K, ...] stacks of K independent networks; both updates are elementwise, so
every member is updated as if it were alone. ``adam_update`` is also the fixed-point search's optimizer
(rnngeom.analysis.fixed_points). Defaults as torch's: betas 0.9, 0.999; eps 1e-8; no weight decay, no AMSGrad.
"""

from __future__ import annotations

import torch

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


@torch.no_grad()
def adam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    lr: float,
) -> None:
    """One Adam update of ``param`` in place (``step`` counts from 1; the moments too): torch.optim.Adam's
    single-tensor path."""
    exp_avg.lerp_(grad, 1 - BETA1)
    exp_avg_sq.mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
    bias_correction1 = 1 - BETA1**step
    bias_correction2 = 1 - BETA2**step
    step_size = lr / bias_correction1
    denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(EPS)
    param.addcdiv_(exp_avg, denom, value=-step_size)


class Adam:
    """Adam (``adam_update``) over ``params``; state: the step count and both moments per tensor."""

    def __init__(self, params: list[torch.Tensor], lr: float):
        self.params = list(params)
        self.lr = float(lr)
        self.steps = 0
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for p, m, v in zip(self.params, self.exp_avgs, self.exp_avg_sqs):
            adam_update(p, p.grad, m, v, self.steps, self.lr)

    def state_dict(self) -> dict:
        return {"kind": "adam", "steps": self.steps, "exp_avg": self.exp_avgs, "exp_avg_sq": self.exp_avg_sqs}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        _check(state, "adam", len(self.params), "exp_avg")
        self.steps = int(state["steps"])
        for mine, saved in zip(self.exp_avgs + self.exp_avg_sqs, state["exp_avg"] + state["exp_avg_sq"]):
            mine.copy_(saved)


class SGD:
    """Plain SGD, with optional heavy-ball momentum (torch.optim.SGD's: buf ← μ buf + g, p ← p − lr buf,
    the first buffer being the gradient itself)."""

    def __init__(self, params: list[torch.Tensor], lr: float, momentum: float = 0.0):
        self.params = list(params)
        self.lr, self.momentum = float(lr), float(momentum)
        self.buffers: list[torch.Tensor] | None = None

    @torch.no_grad()
    def step(self) -> None:
        if self.momentum == 0.0:
            for p in self.params:
                p.add_(p.grad, alpha=-self.lr)
            return
        if self.buffers is None:
            self.buffers = [p.grad.clone() for p in self.params]
        else:
            for b, p in zip(self.buffers, self.params):
                b.mul_(self.momentum).add_(p.grad)
        for p, b in zip(self.params, self.buffers):
            p.add_(b, alpha=-self.lr)

    def state_dict(self) -> dict:
        return {"kind": "sgd", "buffers": self.buffers}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        _check(state, "sgd", len(self.params), "buffers")
        self.buffers = None if state["buffers"] is None else [b.clone() for b in state["buffers"]]


def _check(state: dict, kind: str, n: int, key: str) -> None:
    if state.get("kind") != kind:
        raise ValueError(f"optimizer state is {state.get('kind')!r}, not {kind!r}")
    if state[key] is not None and len(state[key]) != n:
        raise ValueError("optimizer state is for a different number of parameters")


__all__ = ["Adam", "SGD", "adam_update"]
