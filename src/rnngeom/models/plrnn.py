"""Piecewise-linear RNN (PLRNN, Durstewitz-lab form).

    z_t = A z_{t-1} + W relu(z_{t-1}) + h + C s_t        r_t = z_t

A = diag(a) is diagonal, W has a zero diagonal (enforced in ``step`` by an off-diagonal mask, so it stays
zero under training), h is a bias and C the input matrix.

Initialisation (reconstructions, all keyword arguments):
    a   = a_init (near the identity, default 0.9)
    W_ij ~ N(0, g²/M) for i != j, W_ii = 0      (g = gain, M = n_hidden)
    h   = 0
    C_ij ~ N(0, 1/n_in)
"""

from __future__ import annotations

import torch
from torch import nn

from rnngeom.models.base import RecurrentModel


class PLRNN(RecurrentModel):
    arch = "plrnn"

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, gain: float = 1.0, a_init: float = 0.9):
        super().__init__(n_in, n_hidden, n_out)
        self.gain, self.a_init = float(gain), float(a_init)
        M = n_hidden
        off_diag = 1.0 - torch.eye(M)
        self.register_buffer("off_diag", off_diag, persistent=False)  # derived from M, not saved
        self.a = nn.Parameter(torch.full((M,), self.a_init))
        self.W = nn.Parameter(torch.randn(M, M) * (self.gain / M**0.5) * off_diag)
        self.h = nn.Parameter(torch.zeros(M))
        self.C = nn.Parameter(torch.randn(M, n_in) / n_in**0.5)

    def step(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        W = self.W * self.off_diag  # zero diagonal
        return self.a * z + torch.relu(z) @ W.T + self.h + s @ self.C.T

    def activity(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def linear_pieces(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a, W with zero diagonal, h, C), detached: z_t = diag(a) z + W relu(z) + h + C s."""
        return (self.a.detach(), (self.W * self.off_diag).detach(), self.h.detach(), self.C.detach())

    def hparams(self) -> dict:
        return {"n_hidden": self.n_hidden, "gain": self.gain, "a_init": self.a_init}
