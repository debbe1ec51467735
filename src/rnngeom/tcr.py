"""Temporal consistency regularization (TCR): the one statement of the term, its value and its gradient.

    L = L_task + λ · TCR,      TCR = mean_{b, t, i} (r_{t+1,b,i} − r_{t,b,i})²

over batch b, the T−1 consecutive time pairs t and units i (r = z for the PLRNN, rates for the leaky and
rank-one RNNs, h for the LSTM). It does not use the target (goal-agnostic).

Activity may have any layout: ``time_dim`` names its time axis (default −2, i.e. [..., T, N]). With
``member_dim`` set (an ensemble of K runs, e.g. [K, B, T, N], or time-major [T, K, B, N] with member_dim=1)
the mean runs over every other axis and gives one TCR per member; without it, one scalar over everything.
Fewer than two time steps give TCR = 0 (and a zero gradient).

Window (``training.tcr_window``): ``all`` time pairs (the default), or ``delay``: only the pairs whose two
steps both lie in the task's delay/hold period (``Task.rest_steps``: no pulse, no marker, no evidence, no go
cue), where a memory must be held under a constant input and input-driven changes are not penalised. The
pairs are then weighted by w_{b,t} ∈ {0, 1} (``pair_weight``, shaped like the pairs or broadcastable to them,
e.g. [K, B, T−1, 1]) and TCR is the mean over the weighted pairs: Σ w (Δr)² / (N Σ w).

The gradient, with n the number of squared differences averaged into one TCR value,

    ∂TCR/∂r_t = 2 [(r_t − r_{t−1})·1{t>1} − (r_{t+1} − r_t)·1{t<T}] / n,

is used by the hand-written BPTT and, as a local error of each neuron, by RFLO and the freeze-in rules.
"""

from __future__ import annotations

import torch


def _time_pairs(r: torch.Tensor, time_dim: int) -> torch.Tensor:
    """r_{t+1} − r_t along ``time_dim`` (T−1 entries there)."""
    T = r.shape[time_dim]
    return r.narrow(time_dim, 1, T - 1) - r.narrow(time_dim, 0, T - 1)


def _mean_dims(r: torch.Tensor, member_dim: int | None) -> tuple[int, ...] | None:
    """The axes one TCR value averages over: all of them, or all but ``member_dim``."""
    if member_dim is None:
        return None
    keep = member_dim % r.dim()
    return tuple(d for d in range(r.dim()) if d != keep)


def _pair_count(d2: torch.Tensor, pair_weight: torch.Tensor, dims) -> torch.Tensor:
    """Σ w over the averaged axes (w broadcast to the pairs), at least 1."""
    w = pair_weight.to(d2).expand_as(d2)
    return (w.sum() if dims is None else w.sum(dim=dims)).clamp_min(1.0)


def tcr_penalty(
    r: torch.Tensor,
    *,
    time_dim: int = -2,
    member_dim: int | None = None,
    pair_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """TCR of activity ``r``: a scalar, or [K] with ``member_dim`` (differentiable; 0 when T < 2), over all
    time pairs or, with ``pair_weight``, over the weighted ones."""
    if r.dim() < 2:
        raise ValueError(f"r must have a time and a unit axis, got shape {tuple(r.shape)}")
    d2 = _time_pairs(r, time_dim) ** 2
    dims = _mean_dims(r, member_dim)
    if r.shape[time_dim] < 2:  # no pairs: zero, still attached to r's graph
        return d2.sum() if dims is None else d2.sum(dim=dims)
    if pair_weight is not None:
        wd2 = pair_weight.to(d2) * d2
        total = wd2.sum() if dims is None else wd2.sum(dim=dims)
        return total / _pair_count(d2, pair_weight, dims)
    return d2.mean() if dims is None else d2.mean(dim=dims)


def tcr_grad(
    r: torch.Tensor,
    *,
    time_dim: int = -2,
    member_dim: int | None = None,
    weight: torch.Tensor | float = 1.0,
    out: torch.Tensor | None = None,
    pair_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """weight · ∂TCR/∂r, the gradient of ``tcr_penalty(r, time_dim=..., member_dim=..., pair_weight=...)``,
    shaped like r.

    ``weight``: a number, or one value per member ([K], with member_dim; e.g. λ_k). With ``out`` the
    gradient is added into ``out`` in place (and returned), e.g. onto the task part of dL/dr.
    """
    out = torch.zeros_like(r) if out is None else out
    T = r.shape[time_dim]
    if T < 2:
        return out
    pairs = _time_pairs(r, time_dim)
    if pair_weight is None:
        n = pairs.numel() // (1 if member_dim is None else r.shape[member_dim])
    else:
        n = _pair_count(pairs, pair_weight, _mean_dims(r, member_dim))
    scale = 2 * weight / n
    if isinstance(scale, torch.Tensor) and member_dim is not None:
        shape = [1] * r.dim()
        shape[member_dim] = -1
        scale = scale.reshape(shape)
    d = scale * pairs if pair_weight is None else scale * pair_weight.to(pairs) * pairs
    out.narrow(time_dim, 1, T - 1).add_(d)  # r_t is the later end of the pair (t−1, t)
    out.narrow(time_dim, 0, T - 1).sub_(d)  # ... and the earlier end of the pair (t, t+1)
    return out


def tcr_time_first(
    r: torch.Tensor,
    weight: torch.Tensor,
    out: torch.Tensor | None = None,
    pair_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The fast passes' form of the two functions above, for time-first activity r [T, K, ...] (member axis
    1): returns TCR per member [K] and, with ``out``, adds weight_k · ∂TCR/∂r into it (skipped when every
    weight is 0). The same numbers as ``tcr_penalty`` / ``tcr_grad`` with time_dim=0, member_dim=1 (tested),
    from one difference tensor, summed over the leading axis first (the fast order in memory); a
    ``pair_weight`` of 0s and 1s ([T−1, K, ...], broadcastable) selects the pairs."""
    T, K = r.shape[0], r.shape[1]
    if T < 2:
        return r.new_zeros(K)
    d = r[1:] - r[:-1]
    if pair_weight is None:
        n = torch.full((K,), d.numel() // K, dtype=r.dtype, device=r.device)
    else:
        w = pair_weight.to(d)
        d.mul_(w)  # w ∈ {0, 1}: Σ w d² = Σ (w d)²
        n = w.expand_as(d).sum(0).reshape(K, -1).sum(1).clamp_min(1.0)
    penalty = (d * d).sum(0).reshape(K, -1).sum(1) / n
    if out is not None and bool((weight != 0).any()):
        scale = (2 * weight.to(r) / n).reshape(1, K, *([1] * (r.dim() - 2)))
        out[1:].addcmul_(d, scale)  # r_t is the later end of the pair (t−1, t)
        out[:-1].addcmul_(d, scale, value=-1)  # ... and the earlier end of the pair (t, t+1)
    return penalty
