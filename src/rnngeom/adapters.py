"""Recurrent networks built elsewhere, in the project's model contract (rnngeom.models.base).

The analysis (rnngeom.analysis) needs a discrete-time map on a flat state x: ``step(x, s)`` = F(x, s),
``activity(x)`` (the r_t that trajectories and TCR measure), ``state_size``, ``n_in`` and ``n_hidden``.
``adapt`` wraps:

- ``torch.nn.RNN``, ``nn.GRU``, ``nn.LSTM`` (one layer, one direction, no LSTM projection; ``batch_first``
  either way: the adapter uses the module's weights, not its sequence loop) and ``nn.RNNCell``,
  ``nn.GRUCell``, ``nn.LSTMCell``. The step is the module's own update, written with its weights (PyTorch's
  documented equations; ``tests/test_external.py`` checks it against the module's output):

      RNN   h' = φ(W_ih s + b_ih + W_hh h + b_hh),  φ = tanh or relu (the module's ``nonlinearity``)
      GRU   r = σ(W_ir s + b_ir + W_hr h + b_hr),  z = σ(W_iz s + b_iz + W_hz h + b_hz),
            n = tanh(W_in s + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h
      LSTM  gates (i, f, g, o) as in rnngeom.models.lstm; the state is x = [h, c] (state_size 2N), r = h

- one of the project's own models (returned as it is);
- a container module holding one of the above: ``recurrent`` names the submodule (e.g. ``"gru"`` of a
  ``Net`` with ``self.gru`` and ``self.out``); checkpoints then are state dicts of the container;
- any callable ``F(h, s) -> h'`` on states [B, S] and inputs [B, n_in] (the FixedPointFinder contract): a
  ``torch.nn.Module`` (its parameters load from state dicts and are stacked across checkpoints) or a plain
  function. F must be written with torch operations: the finder differentiates it (``torch.func``,
  ``vmap`` and ``jacrev``). Its activity is its state.

An optional ``readout`` module maps activity to outputs (``ModelOutput.outputs``); the analysis does not
use it, so it may be left out.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rnngeom.models.base import RecurrentModel

TORCH_KINDS = {
    nn.RNN: "rnn",
    nn.GRU: "gru",
    nn.LSTM: "lstm",
    nn.RNNCell: "rnn",
    nn.GRUCell: "gru",
    nn.LSTMCell: "lstm",
}
# The kinds a manifest names (rnngeom.external): the torch modules' and their cells'.
MODULE_KINDS = {
    "rnn": nn.RNN,
    "gru": nn.GRU,
    "lstm": nn.LSTM,
    "rnn_cell": nn.RNNCell,
    "gru_cell": nn.GRUCell,
    "lstm_cell": nn.LSTMCell,
}


def torch_kind(module) -> str | None:
    """ "rnn", "gru" or "lstm" for a torch recurrent module or cell (subclasses included), else None."""
    for cls, kind in TORCH_KINDS.items():
        if isinstance(module, cls):
            return kind
    return None


class _Adapter(RecurrentModel):
    """A foreign map in the RecurrentModel contract. Not RecurrentModel.__init__: the readout is the caller's
    (or none), so wrapping draws no random weights and leaves torch's random state alone."""

    arch = "external"

    def __init__(self, n_in: int, n_hidden: int, readout: nn.Module | None):
        nn.Module.__init__(self)
        if min(n_in, n_hidden) < 1:
            raise ValueError(f"sizes must be positive, got n_in={n_in}, n_hidden={n_hidden}")
        self.n_in, self.n_hidden = int(n_in), int(n_hidden)
        self.readout = readout if readout is not None else nn.Identity()
        self.n_out = int(getattr(readout, "out_features", n_hidden))

    def initial_state(self, batch: int) -> torch.Tensor:
        p = next(iter(self.parameters()), None)
        dtype, device = (torch.float32, None) if p is None else (p.dtype, p.device)
        return torch.zeros(batch, self.state_size, dtype=dtype, device=device)

    def hparams(self) -> dict:
        return {"n_hidden": self.n_hidden}


class TorchRecurrent(_Adapter):
    """torch.nn.RNN / GRU / LSTM (one layer, one direction) or their cells, stepped with their own weights."""

    def __init__(self, module: nn.Module, readout: nn.Module | None = None):
        kind = torch_kind(module)
        if kind is None:
            raise TypeError(f"not a torch recurrent module or cell: {type(module).__name__}")
        cell = isinstance(module, nn.RNNCellBase)
        if not cell:
            if module.num_layers != 1:
                raise ValueError(f"{type(module).__name__}: num_layers={module.num_layers}; one layer only")
            if module.bidirectional:
                raise ValueError(f"{type(module).__name__}: bidirectional=True; one direction only")
            if getattr(module, "proj_size", 0):
                raise ValueError(f"{type(module).__name__}: proj_size={module.proj_size}; no projection")
        super().__init__(module.input_size, module.hidden_size, readout)
        self.kind = kind
        self.arch = kind
        self.module = module
        self._suffix = "" if cell else "_l0"
        self.nonlinearity = getattr(module, "nonlinearity", "tanh")

    @property
    def state_size(self) -> int:
        return 2 * self.n_hidden if self.kind == "lstm" else self.n_hidden

    def _weights(self):
        m, sfx = self.module, self._suffix  # biases are None (or absent) for bias=False
        b_ih, b_hh = getattr(m, f"bias_ih{sfx}", None), getattr(m, f"bias_hh{sfx}", None)
        return getattr(m, f"weight_ih{sfx}"), getattr(m, f"weight_hh{sfx}"), b_ih, b_hh

    def step(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        w_ih, w_hh, b_ih, b_hh = self._weights()
        if self.kind == "lstm":
            h, c = x.chunk(2, dim=-1)
            gates = F.linear(s, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.cat([torch.sigmoid(o) * torch.tanh(c), c], dim=-1)
        gi, gh = F.linear(s, w_ih, b_ih), F.linear(x, w_hh, b_hh)
        if self.kind == "gru":
            i_r, i_z, i_n = gi.chunk(3, dim=-1)
            h_r, h_z, h_n = gh.chunk(3, dim=-1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            return (1.0 - z) * n + z * x
        return torch.relu(gi + gh) if self.nonlinearity == "relu" else torch.tanh(gi + gh)

    def activity(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : self.n_hidden]


class _Function(nn.Module):
    """A plain function F(h, s) as a module without parameters (so torch.func can call it)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, h, s):
        return self.fn(h, s)


class CallableMap(_Adapter):
    """Any map F(h, s) -> h' on a flat state of ``state_size`` under inputs of ``n_in``; activity = state."""

    arch = "callable"

    def __init__(self, fn, state_size: int, n_in: int, readout: nn.Module | None = None):
        if not callable(fn):
            raise TypeError(f"F must be callable, got {type(fn).__name__}")
        super().__init__(n_in, state_size, readout)
        self.map = fn if isinstance(fn, nn.Module) else _Function(fn)
        # a plain function's checkpoints are different functions: they cannot share one stacked batch
        self.stackable = isinstance(fn, nn.Module)

    def step(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.map(x, s)

    def activity(self, x: torch.Tensor) -> torch.Tensor:
        return x


def adapt(
    model,
    *,
    recurrent: str | None = None,
    readout: str | nn.Module | None = None,
    state_size: int | None = None,
    n_in: int | None = None,
) -> RecurrentModel:
    """``model`` in the RecurrentModel contract (see the module docstring).

    recurrent:  the name of the recurrent submodule inside a container ``model`` (``model.get_submodule``).
    readout:    a module, or the name of one inside ``model``, mapping activity to outputs (optional).
    state_size, n_in: the sizes of a callable's state and input (torch modules and our models know theirs).
    """
    if isinstance(readout, str):
        readout = model.get_submodule(readout)
    inner = model.get_submodule(recurrent) if recurrent else model
    if isinstance(inner, RecurrentModel):
        return inner
    if torch_kind(inner) is not None:
        return TorchRecurrent(inner, readout)
    if callable(inner):
        if state_size is None or n_in is None:
            raise ValueError(
                "a callable F(h, x) needs its state_size and n_in (rnngeom.external reads them from the "
                "trajectories or state_size, and from the inputs or the constant input)"
            )
        return CallableMap(inner, int(state_size), int(n_in), readout)
    raise TypeError(
        f"cannot analyse a {type(inner).__name__}: give a torch.nn.RNN/GRU/LSTM (or cell), an rnngeom model, "
        "a container with recurrent='<submodule>', or a callable F(h, x) -> h'"
    )
