"""Leaky firing-rate RNN.

    x_t = (1-α) x_{t-1} + α (W tanh(x_{t-1}) + W_in s_t + b) + ξ_t        r_t = tanh(x_t)

α = Δt/τ. Noise ξ_t = noise_std·sqrt(α)·N(0, I), only when noise_std > 0 and the module is in training
mode (drawn from torch's global RNG).

Initialisation (reconstructions, all keyword arguments):
    W_ij    ~ N(0, g²/N)     (g = gain; g > 1 is the chaotic regime; default 1.5)
    W_in_ij ~ N(0, 1/n_in)
    b       = 0
"""

from __future__ import annotations

import torch
from torch import nn

from rnngeom.models.base import RecurrentModel


class LeakyRNN(RecurrentModel):
    arch = "leaky"

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        n_out: int,
        *,
        gain: float = 1.5,
        alpha: float = 0.2,
        noise_std: float = 0.0,
    ):
        super().__init__(n_in, n_hidden, n_out)
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.gain, self.alpha, self.noise_std = float(gain), float(alpha), float(noise_std)
        self.init_recurrent()
        self.W_in = nn.Parameter(torch.randn(n_hidden, n_in) / n_in**0.5)
        self.b = nn.Parameter(torch.zeros(n_hidden))

    def init_recurrent(self) -> None:
        """Create the recurrent parameters: a full matrix W_ij ~ N(0, g²/N)."""
        N = self.n_hidden
        self.W = nn.Parameter(torch.randn(N, N) * (self.gain / N**0.5))

    def recurrent_weight(self) -> torch.Tensor:
        """The N x N recurrent matrix W."""
        return self.W

    def step(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        a, W = self.alpha, self.recurrent_weight()
        x_new = (1 - a) * x + a * (torch.tanh(x) @ W.T + s @ self.W_in.T + self.b)
        if self.training and self.noise_std > 0:
            x_new = x_new + self.noise_std * a**0.5 * torch.randn_like(x_new)
        return x_new

    def activity(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)

    def hparams(self) -> dict:
        return {
            "n_hidden": self.n_hidden,
            "gain": self.gain,
            "alpha": self.alpha,
            "noise_std": self.noise_std,
        }
