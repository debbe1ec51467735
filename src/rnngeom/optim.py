"""Adam without the ``torch.optim`` machinery, bit for bit the same updates (tested against torch.optim.Adam).

Why not ``torch.optim.Adam`` itself: its constructor and ``zero_grad``/``state_dict`` are wrapped so that
their first call imports torch's compiler stack (``torch._dynamo``): 1.5 s per process, measured, paid by
every training and analysis job for nothing. Its ``step`` also goes through hooks and a profiler record
that cost more than the update itself at our sizes. The arithmetic here is torch's own:

* ``FusedAdam`` calls the kernel that ``torch.optim.Adam(fused=True)`` calls (``torch._fused_adam_``), with
  float32 step counters as it keeps them: the trainer's optimizer.
* ``adam_update`` is the update of ``torch.optim.Adam``'s default (single-tensor) path on one tensor, op for
  op: the fixed-point search's optimizer (rnngeom.analysis.fixed_points).

Both keep torch's defaults (betas 0.9, 0.999; eps 1e-8; no weight decay, no AMSGrad), and the state dict has
torch.optim.Adam's layout, so a resume file holds the same thing as before.
"""

from __future__ import annotations

import torch

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


class FusedAdam:
    """Adam over a fixed list of tensors whose ``.grad`` the caller sets before each ``step()``.

    ``members``: the parameters are [members, ...] stacks of independent networks (the trainer's ensembles),
    and the kernel is handed each member's slice as a tensor of its own. Why: the CPU kernel runs a
    vectorised loop and a scalar tail per tensor, whose roundings differ (fused multiply-adds), so on a
    [K, 3] readout bias a member's update depended on K; slice by slice, each member is updated exactly as if
    it were trained alone (tested), in one call all the same."""

    def __init__(self, params: list[torch.Tensor], lr: float, members: int = 1):
        self.params = list(params)
        self.lr = float(lr)
        self.members = int(members)
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self._slices = [self._split(ts) for ts in (self.params, self.exp_avgs, self.exp_avg_sqs)]
        self._slice_steps = [s for s in self.steps for _ in range(self.members)]  # one per slice (read only)

    def _split(self, tensors) -> list[torch.Tensor]:
        if self.members == 1:
            return [t.detach() for t in tensors]
        return [m for t in tensors for m in t.detach().unbind(0)]

    @torch.no_grad()
    def step(self) -> None:
        params, exp_avgs, exp_avg_sqs = self._slices
        torch._foreach_add_(self.steps, 1)
        torch._fused_adam_(
            params,
            self._split([p.grad for p in self.params]),
            exp_avgs,
            exp_avg_sqs,
            [],  # AMSGrad's running maxima: not used
            self._slice_steps,
            amsgrad=False,
            lr=self.lr,
            beta1=BETA1,
            beta2=BETA2,
            weight_decay=0.0,
            eps=EPS,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

    def state_dict(self) -> dict:
        """torch.optim.Adam's layout (per-parameter 'step', 'exp_avg', 'exp_avg_sq'; one param group)."""
        state = {
            i: {"step": s, "exp_avg": m, "exp_avg_sq": v}
            for i, (s, m, v) in enumerate(zip(self.steps, self.exp_avgs, self.exp_avg_sqs))
        }
        group = {
            "lr": self.lr,
            "betas": (BETA1, BETA2),
            "eps": EPS,
            "weight_decay": 0.0,
            "amsgrad": False,
            "fused": True,
            "params": list(range(len(self.params))),
        }
        return {"state": state, "param_groups": [group]}

    @torch.no_grad()
    def load_state_dict(self, sd: dict) -> None:
        state = sd["state"]
        if len(sd["param_groups"][0]["params"]) != len(self.params):
            raise ValueError("optimizer state is for a different number of parameters")
        for i in range(len(self.params)):
            s = state.get(i)
            if s is None:  # torch.optim.Adam keeps no state for a parameter before its first step
                self.steps[i].zero_()
                self.exp_avgs[i].zero_()
                self.exp_avg_sqs[i].zero_()
                continue
            self.steps[i].copy_(torch.as_tensor(s["step"]))
            self.exp_avgs[i].copy_(s["exp_avg"])
            self.exp_avg_sqs[i].copy_(s["exp_avg_sq"])


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


__all__ = ["FusedAdam", "adam_update"]
