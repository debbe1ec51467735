"""Parameter checking shared by the task generators.

Task params arrive from YAML configs, so a typo (``n_step``) or a bad value must fail loudly with the
param's name instead of silently falling back to a default.
"""

from __future__ import annotations

import math
from numbers import Integral, Real


def resolve(task: str, defaults: dict, params: dict) -> dict:
    """Defaults overridden by ``params``; unknown keywords are an error, not ignored."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"{task}: unknown parameter(s) {unknown}; allowed: {sorted(defaults)}")
    return {**defaults, **params}


def check_int(task: str, name: str, value, lo: int) -> int:
    # bool is an Integral in Python; True as a step count is almost certainly a config mistake.
    if isinstance(value, bool) or not isinstance(value, Integral) or value < lo:
        raise ValueError(f"{task}: {name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def check_float(task: str, name: str, value, lo: float, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not (lo <= value <= hi):
        raise ValueError(f"{task}: {name} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)
