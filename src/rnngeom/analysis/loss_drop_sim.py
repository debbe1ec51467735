"""Planted learning curves with known answers for the loss-drop detector, and its rates on them.

    python -m rnngeom.analysis.loss_drop_sim [--seeds 10]

prints, per planted family, how often the detector calls a curve abrupt (its power on search phases, its
false-positive rate on the rest) and how often it finds a fall at all ("escaped"). The families:

* search phase: a plateau of 300-10,000 iterations, then a sigmoid fall of 1.5 decades whose 10-90 % width is
  5-25 % of the plateau, on runs of 1,000-50,000 iterations evaluated every 10-100 (only combinations where
  the plateau spans at least 6 evaluations and the run goes on past the fall), log-loss noise 0.02-0.05;
* exponential: 0.2 + 0.8 e^(-t/100) and 0.05 + 0.95 e^(-t/τ) with τ a tenth of the run;
* 1/t: 1/(1 + t/10) and 1/(1 + t/τ) with τ a twentieth of the run;
* two-stage slow: an exponential first stage (τ 1000), a pause, then a second fall twice as wide as the
  pause before it;
each on the same run lengths and intervals, with multiplicative noise 0.02 decades.
"""

from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np
import pandas as pd
from scipy.special import expit

from rnngeom.analysis.loss_drop import detect_loss_drop

WIDTH_PER_SCALE = 2.0 * np.log(9.0)  # the 10-90 % width of σ(t / w) is 2 ln 9 · w

RUN_LENGTHS = (1000, 3000, 10000, 50000)
EVAL_EVERY = (10, 50, 100)
PLATEAUS = (300, 1000, 3000, 10000)
WIDTH_FRACTIONS = (0.05, 0.1, 0.25)
NOISE = (0.02, 0.05)


def _noise(n: int, sd: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sd, n)


def sigmoid_crossing(t_mid: float, width: float, decades: float, below: float) -> float:
    """When level − decades · σ((t − t_mid) · 2 ln 9 / width) is ``below`` decades under its level."""
    w = width / WIDTH_PER_SCALE
    return t_mid + w * np.log(below / (decades - below))


def planted_search(plateau, width, n_iterations, eval_every, *, seed=0, noise=0.03, decades=1.5, level=-0.5):
    """(iterations, loss, truth): a plateau at 10**level, then a sigmoid fall of ``decades`` with 10-90 %
    width ``width`` whose 10 % point is at ``plateau``, off the evaluation grid. truth: the midpoint, the
    onset (0.15 decades down) and the escape (0.5 decades down) of the noise-free curve."""
    its = np.arange(0, n_iterations + 1, eval_every, dtype=float)
    t_mid = plateau + width / 2 + 0.37 * eval_every
    log_loss = level - decades * expit((its - t_mid) * WIDTH_PER_SCALE / width)
    loss = 10 ** (log_loss + _noise(len(its), noise, seed))
    truth = {
        "t_mid": t_mid,
        "t_onset": sigmoid_crossing(t_mid, width, decades, 0.15),
        "t_drop": sigmoid_crossing(t_mid, width, decades, 0.5),
        "width": width,
    }
    return its, loss, truth


def smooth_decays(its: np.ndarray, n_iterations: float) -> dict[str, np.ndarray]:
    """Curves that fall from the start (no search phase): never abrupt."""
    return {
        "exponential, tau 100": 0.2 + 0.8 * np.exp(-its / 100),
        "exponential, tau run/10": 0.05 + 0.95 * np.exp(-its / (n_iterations / 10)),
        "1/t, tau 10": 1 / (1 + its / 10),
        "1/t, tau run/20": 1 / (1 + its / (n_iterations / 20)),
    }


def two_stage(its: np.ndarray, *, pause: float, second_width: float, seed: int = 0, noise: float = 0.02):
    """A first exponential stage (0.5 decades, tau 1000), a pause of ``pause`` iterations after it (from
    iteration 3000), then a second fall of one decade with 10-90 % width ``second_width``."""
    first = -0.5 * (1 - np.exp(-its / 1000))
    t_mid = 3000 + pause + second_width / 2
    second = -1.0 * expit((its - t_mid) * WIDTH_PER_SCALE / second_width)
    return 10 ** (first + second + _noise(len(its), noise, seed))


def cases(n_seeds: int):
    """(family, iterations, loss) of every planted curve."""
    for plateau, frac, n, every, sd, seed in itertools.product(
        PLATEAUS, WIDTH_FRACTIONS, RUN_LENGTHS, EVAL_EVERY, NOISE, range(n_seeds)
    ):
        if plateau >= 6 * every and n >= 1.3 * plateau + 5 * every:
            its, loss, _ = planted_search(plateau, frac * plateau, n, every, seed=seed, noise=sd)
            yield "search phase", its, loss
    for n, every, seed in itertools.product(RUN_LENGTHS, EVAL_EVERY, range(n_seeds)):
        its = np.arange(0, n + 1, every, dtype=float)
        for name, curve in smooth_decays(its, n).items():
            yield name.split(",")[0], its, curve * 10 ** _noise(len(its), 0.02, seed)
    for n, every, seed in itertools.product((10000, 50000), EVAL_EVERY, range(n_seeds)):
        its = np.arange(0, n + 1, every, dtype=float)
        yield (
            "two-stage slow",
            its,
            two_stage(its, pause=min(2000, n / 8), second_width=min(4000, n / 4), seed=seed),
        )


def rates(n_seeds: int = 10, **detector) -> pd.DataFrame:
    """Per family: number of curves, fraction called abrupt, fraction with a fall found (escaped)."""
    rows = []
    for family, its, loss in cases(n_seeds):
        d = detect_loss_drop(its, loss, **detector)
        rows.append({"family": family, "abrupt": d.abrupt, "escaped": d.escaped})
    df = pd.DataFrame(rows)
    out = df.groupby("family", sort=False).agg(
        n=("abrupt", "size"), abrupt=("abrupt", "mean"), escaped=("escaped", "mean")
    )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10, help="noise draws per planted curve")
    a = ap.parse_args(argv)
    print(rates(a.seeds).to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
