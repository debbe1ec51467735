"""The four architectures and ``build_model``, which rebuilds a model from its ``spec()``."""

from __future__ import annotations

import inspect

from rnngeom.models.base import ModelOutput, RecurrentModel
from rnngeom.models.leaky import LeakyRNN
from rnngeom.models.lstm import LSTM
from rnngeom.models.plrnn import PLRNN
from rnngeom.models.rank1 import RankOneRNN

MODELS: dict[str, type[RecurrentModel]] = {
    "plrnn": PLRNN,
    "leaky": LeakyRNN,
    "lstm": LSTM,
    "rank1": RankOneRNN,
}

__all__ = [
    "MODELS",
    "build_model",
    "ModelOutput",
    "RecurrentModel",
    "PLRNN",
    "LeakyRNN",
    "LSTM",
    "RankOneRNN",
]


def build_model(spec: dict) -> RecurrentModel:
    """Build a model from {"arch", "n_in", "n_out", "n_hidden", **hparams} (the output of
    ``model.spec()``)."""
    spec = dict(spec)
    arch = spec.pop("arch", None)
    if arch not in MODELS:
        raise ValueError(f"unknown arch {arch!r}; allowed: {sorted(MODELS)}")
    cls = MODELS[arch]
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for arch {arch!r}; allowed: {allowed}")
    missing = sorted({"n_in", "n_hidden", "n_out"} - set(spec))
    if missing:
        raise ValueError(f"model spec for arch {arch!r} is missing {missing}")
    return cls(**spec)
