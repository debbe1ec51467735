"""Temporal consistency regularization (TCR).

    L = L_task + λ · TCR,      TCR = mean_{b, t, i} (r_{t+1,b,i} − r_{t,b,i})²

over batch b, the T−1 consecutive time pairs t and units i, for activity r of shape [B, T, N] (r = z for the
PLRNN, rates for the leaky and rank-one RNNs, h for the LSTM). It does not use the target (goal-agnostic).

With a weight w_t (shape [T−1], or [B, T−1]; e.g. 1 only in the delay period) it is the weighted mean

    TCR_w = Σ_{b,t,i} w_{b,t} (r_{t+1} − r_t)² / (N · Σ_{b,t} w_{b,t}).
"""

from __future__ import annotations

import torch


def tcr_penalty(r: torch.Tensor, time_weight: torch.Tensor | None = None) -> torch.Tensor:
    """TCR of activity ``r`` [B, T, N]; a differentiable scalar (0 when T < 2 or all weights are 0)."""
    if r.dim() != 3:
        raise ValueError(f"r must have shape [B, T, N], got {tuple(r.shape)}")
    B, T, N = r.shape
    d2 = (r[:, 1:] - r[:, :-1]) ** 2  # [B, T-1, N]
    if T < 2:
        return d2.sum()  # zero, still attached to r's graph
    if time_weight is None:
        return d2.mean()
    w = torch.as_tensor(time_weight, dtype=r.dtype, device=r.device)
    if tuple(w.shape) not in {(T - 1,), (B, T - 1)}:
        raise ValueError(f"time_weight must have shape [{T - 1}] or [{B}, {T - 1}], got {tuple(w.shape)}")
    w = w.expand(B, T - 1)
    denom = (w.sum() * N).clamp_min(torch.finfo(r.dtype).tiny)
    return (w.unsqueeze(-1) * d2).sum() / denom
