"""The one interface every architecture implements.

A model is a discrete-time dynamical system on a flat state vector x_t (shape [batch, state_size]):

    x_t = F(x_{t-1}, s_t)          (``step``)
    r_t = activity(x_t)            (``activity``, the r_t that TCR penalises, shape [batch, n_hidden])
    y_t = B r_t + b_out            (``readout``)

Keeping the state flat (the LSTM concatenates (h, c)) lets one fixed-point finder serve every architecture:
a fixed point under constant input s is x* = F(x*, s).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ModelOutput:
    outputs: torch.Tensor  # [batch, T, n_out]   y_t
    activity: torch.Tensor  # [batch, T, n_hidden] r_t (what TCR and the analysis use)
    states: torch.Tensor  # [batch, T, state_size] x_t


class RecurrentModel(nn.Module):
    """Base class: subclasses define ``state_size``, ``step`` and ``activity``; ``forward`` is shared."""

    arch: str = "base"

    def __init__(self, n_in: int, n_hidden: int, n_out: int):
        super().__init__()
        if min(n_in, n_hidden, n_out) < 1:
            raise ValueError(f"sizes must be positive, got n_in={n_in}, n_hidden={n_hidden}, n_out={n_out}")
        self.n_in, self.n_hidden, self.n_out = n_in, n_hidden, n_out
        self.readout = nn.Linear(n_hidden, n_out)  # y_t = B r_t + b_out

    @property
    def state_size(self) -> int:
        return self.n_hidden

    def initial_state(self, batch: int) -> torch.Tensor:
        p = self.readout.weight
        return torch.zeros(batch, self.state_size, dtype=p.dtype, device=p.device)

    def step(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """One step of the dynamics, x_t = F(x_{t-1}, s_t). x: [B, state_size], s: [B, n_in]."""
        raise NotImplementedError

    def activity(self, x: torch.Tensor) -> torch.Tensor:
        """r_t from the state x_t: [B, state_size] -> [B, n_hidden]."""
        raise NotImplementedError

    def forward(self, inputs: torch.Tensor, x0: torch.Tensor | None = None) -> ModelOutput:
        """Run the dynamics over inputs [B, T, n_in] from x0 (zeros by default)."""
        x = self.initial_state(inputs.shape[0]) if x0 is None else x0
        states = []
        for t in range(inputs.shape[1]):
            x = self.step(x, inputs[:, t])
            states.append(x)
        xs = torch.stack(states, dim=1)
        r = self.activity(xs)
        return ModelOutput(outputs=self.readout(r), activity=r, states=xs)

    def spec(self) -> dict:
        """Everything needed to rebuild this model with ``rnngeom.models.build_model``."""
        return {"arch": self.arch, "n_in": self.n_in, "n_out": self.n_out, **self.hparams()}

    def hparams(self) -> dict:
        """Constructor keyword arguments besides n_in/n_out (n_hidden, gain, ...)."""
        raise NotImplementedError
