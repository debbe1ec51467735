"""The task loss: masked mean squared error, its value and its gradient with respect to the outputs.

    L_task = Σ m ⊙ (y − y*)² / Σ m,        ∂L_task/∂y = 2 m ⊙ (y − y*) / Σ m

over batch, time and output channels, where the mask m is 1 on the entries the task scores and 0 elsewhere
(Σ m is clamped at 1, so a batch with nothing to score has loss 0). With ``member_dim`` set (an ensemble of
K runs, e.g. [K, B, T, n_out], or time-major [T, K, B, n_out] with member_dim=1) the sums run over every
other axis and give one loss per member; without it, one scalar.
"""

from __future__ import annotations

import torch


def _sum_dims(x: torch.Tensor, member_dim: int | None) -> tuple[int, ...]:
    """The axes one loss value sums over: all of them, or all but ``member_dim``."""
    keep = None if member_dim is None else member_dim % x.dim()
    return tuple(d for d in range(x.dim()) if d != keep)


def masked_mse(
    outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, *, member_dim: int | None = None
) -> torch.Tensor:
    """Masked MSE of ``outputs`` against ``targets``: a scalar, or [K] with ``member_dim``."""
    if member_dim is None:
        return (mask * (outputs - targets) ** 2).sum() / mask.sum().clamp_min(1.0)
    dims = _sum_dims(outputs, member_dim)
    return (mask * (outputs - targets) ** 2).sum(dims) / mask.sum(dims).clamp_min(1.0)


def masked_mse_grad(
    outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, *, member_dim: int | None = None
) -> torch.Tensor:
    """∂ masked_mse / ∂ outputs, shaped like ``outputs`` (each member's loss by its own outputs)."""
    dims = _sum_dims(outputs, member_dim)
    scale = 2 / mask.sum(dims, keepdim=True).clamp_min(1.0)
    return scale * (mask * (outputs - targets))
