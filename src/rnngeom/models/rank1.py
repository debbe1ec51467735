"""Rank-one leaky firing-rate RNN: the leaky RNN (see leaky.py) with

    W = m nᵀ / N,   so   x_t = (1-α) x_{t-1} + α (m κ_{t-1} + W_in s_t + b) + ξ_t,   κ = nᵀ tanh(x) / N

The latent κ_t = nᵀ r_t / N (``kappa``) gives a one-dimensional picture of geometric restructuring.

Initialisation (reconstructions): m_i ~ N(0, g²) (g = gain, default 1.0), n_i ~ N(0, 1); W_in, b as leaky.
"""

from __future__ import annotations

import torch
from torch import nn

from rnngeom.models.leaky import LeakyRNN


class RankOneRNN(LeakyRNN):
    arch = "rank1"

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        n_out: int,
        *,
        gain: float = 1.0,
        alpha: float = 0.2,
        noise_std: float = 0.0,
    ):
        super().__init__(n_in, n_hidden, n_out, gain=gain, alpha=alpha, noise_std=noise_std)

    def init_recurrent(self) -> None:
        """Create the recurrent parameters: m ~ N(0, g²), n ~ N(0, 1)."""
        N = self.n_hidden
        self.m = nn.Parameter(torch.randn(N) * self.gain)
        self.n = nn.Parameter(torch.randn(N))

    def recurrent_weight(self) -> torch.Tensor:
        """W = m nᵀ / N."""
        return torch.outer(self.m, self.n) / self.n_hidden

    def kappa(self, r: torch.Tensor) -> torch.Tensor:
        """Latent κ = nᵀ r / N for rates r [..., N] -> [...]."""
        return r @ self.n / self.n_hidden
