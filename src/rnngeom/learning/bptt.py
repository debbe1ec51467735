"""Backpropagation through time (BPTT) of  L_k = masked MSE(y, y*) + λ_k · TCR(r)  for every ensemble member.

Two ways, the same gradients (tests/test_learning_passes.py compares them in float64):

* ``hand_written: true`` (the default): the architecture's fast pass (``rnngeom.learning.passes``), one
  batched torch pass for all K members, forward and hand-written backward, on a CPU or a GPU alike;
* ``hand_written: false``: autograd through the model file's own ``forward``, one member at a time (the
  reference: what a changed equation in a model file is checked against).
"""

from __future__ import annotations

import torch

from rnngeom.learning import Batch, LearningRule, StepResult, activity_variance, register
from rnngeom.learning.passes import leaky_pass, lstm_pass, plrnn_pass
from rnngeom.losses import masked_mse
from rnngeom.models import build_model
from rnngeom.tcr import tcr_penalty


@register
class BPTT(LearningRule):
    """Exact gradients of the task loss plus λ·TCR through the whole trial."""

    name = "bptt"

    @classmethod
    def default_settings(cls) -> dict:
        # hand_written: the fast pass (true) or autograd through the model file (false, the reference)
        return {"hand_written": True}

    def __init__(
        self, model_spec: dict, members: list[dict], settings: dict | None = None, tcr_window: str = "all"
    ):
        super().__init__(model_spec, members, settings, tcr_window)
        choice = self.settings["hand_written"]
        if choice not in (True, False):
            raise ValueError(f"bptt setting hand_written must be true or false, got {choice!r}")
        self.hand_written = bool(self.settings["hand_written"])
        self.noise_std = float(self.model_spec.get("noise_std", 0.0))
        # One module whose parameters are swapped for each member's (the reference path only).
        self._module = None if self.hand_written else build_model({**self.model_spec, "gain": 1.0})

    def provenance(self) -> dict:
        return {"bptt_path": "fast pass (rnngeom.learning.passes)" if self.hand_written else "autograd"}

    def gradients_for(self, params: dict, batch: Batch, lambdas: torch.Tensor, iteration: int) -> StepResult:
        if not self.hand_written:
            return self._autograd(params, batch, lambdas)
        arch = self.model_spec["arch"]
        with torch.no_grad():
            if arch == "plrnn":
                return plrnn_pass(params, batch, lambdas)
            if arch == "lstm":
                return lstm_pass(params, batch, lambdas)
            alpha = float(self.model_spec["alpha"])
            noise = None
            if self.noise_std > 0:  # ξ_t = noise_std · sqrt(α) · N(0, I), from torch's global RNG
                K, B, T, _ = batch.inputs.shape
                N = int(self.model_spec["n_hidden"])
                noise = torch.randn(T, K, B, N, dtype=batch.inputs.dtype, device=batch.inputs.device)
                noise.mul_(self.noise_std * alpha**0.5)
            return leaky_pass(params, batch, lambdas, alpha, arch == "rank1", noise)

    def _autograd(self, params: dict, batch: Batch, lambdas: torch.Tensor) -> StepResult:
        """Autograd through the model's own forward, one member at a time (the reference path)."""
        from torch.func import functional_call

        names = list(params)
        losses, tcrs, variances, grads = [], [], [], {n: [] for n in names}
        pairs = batch.pair_weight("member_first")
        for k in range(self.n_members):
            member = {n: params[n][k].detach().requires_grad_(True) for n in names}
            out = functional_call(self._module, member, (batch.inputs[k],))
            task_loss = masked_mse(out.outputs, batch.targets[k], batch.mask[k])
            tcr = tcr_penalty(out.activity, pair_weight=None if pairs is None else pairs[k])
            g = torch.autograd.grad(
                task_loss + lambdas[k].to(tcr) * tcr, [member[n] for n in names], allow_unused=True
            )
            for n, gn in zip(names, g):
                grads[n].append(torch.zeros_like(member[n]) if gn is None else gn)
            losses.append(task_loss.detach())
            tcrs.append(tcr.detach())
            variances.append(activity_variance(out.activity.detach()[None])[0])
        return StepResult(
            torch.stack(losses),
            torch.stack(tcrs),
            {n: torch.stack(v) for n, v in grads.items()},
            torch.stack(variances),
        )


__all__ = ["BPTT"]
