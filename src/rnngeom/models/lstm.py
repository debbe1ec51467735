"""Standard single-layer LSTM with explicit gates; state x_t = [h_t, c_t] (state_size = 2N), r_t = h_t.

    i_t = σ(W_ih[i] s_t + W_hh[i] h_{t-1} + b[i])        input gate
    f_t = σ(W_ih[f] s_t + W_hh[f] h_{t-1} + b[f])        forget gate
    g_t = tanh(W_ih[g] s_t + W_hh[g] h_{t-1} + b[g])     candidate
    o_t = σ(W_ih[o] s_t + W_hh[o] h_{t-1} + b[o])        output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

W_ih is [4N, n_in] and W_hh is [4N, N], rows stacked in the order (i, f, g, o).

Initialisation (reconstructions, all keyword arguments):
    W_hh ~ N(0, g²/N) (g = gain, default 1.0),  W_ih ~ N(0, 1/n_in),
    b = 0 except the forget-gate block b[f] = forget_bias (default 1.0).
"""

from __future__ import annotations

import torch
from torch import nn

from rnngeom.models.base import RecurrentModel


class LSTM(RecurrentModel):
    arch = "lstm"

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, gain: float = 1.0, forget_bias: float = 1.0):
        super().__init__(n_in, n_hidden, n_out)
        self.gain, self.forget_bias = float(gain), float(forget_bias)
        N = n_hidden
        self.W_ih = nn.Parameter(torch.randn(4 * N, n_in) / n_in**0.5)
        self.W_hh = nn.Parameter(torch.randn(4 * N, N) * (self.gain / N**0.5))
        b = torch.zeros(4 * N)
        b[N : 2 * N] = self.forget_bias
        self.b = nn.Parameter(b)

    @property
    def state_size(self) -> int:
        return 2 * self.n_hidden

    def step(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h, c = x.chunk(2, dim=-1)
        pre_i, pre_f, pre_g, pre_o = (s @ self.W_ih.T + h @ self.W_hh.T + self.b).chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(pre_i), torch.sigmoid(pre_f), torch.tanh(pre_g), torch.sigmoid(pre_o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return torch.cat([h, c], dim=-1)

    def activity(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : self.n_hidden]

    def hparams(self) -> dict:
        return {"n_hidden": self.n_hidden, "gain": self.gain, "forget_bias": self.forget_bias}
