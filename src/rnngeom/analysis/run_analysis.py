"""Phase-space analysis of a training run: fixed/slow points at every checkpoint, GR events.

    python -m rnngeom.analysis.run_analysis --checkpoints runs/x/checkpoints.pt --data data/task/test.npz \\
        --out-dir runs/x/analysis [--settings '{...}' | @file.json] [--threads N]
    python -m rnngeom.analysis.run_analysis --data data/task/test.npz --run-dir runs/x runs/y \\
        [--settings '[{...}, {...}]'] [--manifest runs/block0.analysis.json]

The second form analyses several runs of one task in one process (a seed block: one torch import for all):
each --run-dir holds checkpoints.pt and gets its analysis/ exactly as the first form writes
it; --settings is one object for every run or a list with one object per --run-dir; --manifest writes the
block's manifest (rnngeom.blocks) after the last run.

Steps:
1. Run every checkpoint's model on the same first ``n_trials`` held-out trials (trajectories); slow dynamics
   at every checkpoint: mean hidden-state speed, the TCR penalty, the ramping index and its
   autocorrelation-matched null (``ramping_index``, ``ramping_null``), and the weight motion into it,
   ‖θ_k − θ_{k−1}‖ over all parameters (``param_change``).
2. Fit a PCA frame once, on the final model's trajectories; everything is projected into it.
3. Fixed points at every checkpoint (``fixed_points_at: all``; ``final``: at the final checkpoint only, for
   runs whose claims read no time course of the fixed points) under a constant input (``input``: the
   task's resting input by default, see ``constant_input``): the exact region solver for PLRNNs
   (``plrnn_method="exact"``), the batched speed minimiser otherwise, from ONE start set per run
   (``run_starts``: half uniform over the box the trajectories of all checkpoints visit, half on those
   trajectories), so consecutive checkpoints are compared on the same footing; ``checkpoints_per_batch``
   checkpoints are optimised together.
4. GR noise floor (``fixed_points_at: all`` only): a few checkpoints are re-analysed with other start sets
   and scored against their main analysis (identical networks: pure start-sampling noise); the run's event
   threshold follows (gr_events.gr_threshold).
5. Rank-one models only: the exact one-dimensional flow of the latent κ at every checkpoint (``kappa_flow``).
6. GR scores between consecutive checkpoints, judged against the threshold (t_GR, t_GR_max); with
   ``fixed_points_at: final`` there are none (gr_scores.tsv and events.tsv header-only, the GR fields of
   analysis.json null, the fixed-point counts of checkpoint_summary.tsv empty before the final checkpoint).

Outputs in --out-dir (each written atomically):
    fixed_points.tsv        iteration, point_id, pc1..pc3, q, max_abs_eig, n_unstable_modes, kind
    checkpoint_summary.tsv  iteration, n_fixed (= stable + saddle + unstable), n_stable, n_saddle, n_unstable,
                            n_slow, mean_speed (mean ‖x_t − x_{t−1}‖ along the trajectories), mean_tcr
                            (mean (r_t − r_{t−1})², the TCR penalty), ramping_index (see ``ramping_index``:
                            mean over units of |Spearman ρ| between the trial-averaged rate r̄_i(t) and t),
                            ramping_null (the same index of AR(1) surrogates with matched autocorrelation),
                            param_change (‖θ_k − θ_{k−1}‖, empty at the first checkpoint)
    kappa_flow.tsv          rank-one runs (arch "rank1"): the 1-D flow of the latent κ at every checkpoint
                            (see ``kappa_flow``): iteration, kappa, dkappa, slope, kind (grid | stable |
                            saddle | unstable; the non-grid rows are the fixed points). Other architectures:
                            the header only
    gr_scores.tsv           one row per consecutive checkpoint pair (gr_events.JUDGED_COLUMNS: the score, the
                            run's threshold null_q and event = score > null_q)
    events.tsv              the GR events (gr_events.EVENT_COLUMNS), possibly no rows
    trajectories_pca.npz    iterations [C], pcs [C, n_plot_trials, T, 3] (for phase portraits), pca_mean,
                            pca_components
    analysis.json           GR (t_GR, t_GR_max, gr_threshold,
                            gr_noise_floor = median null score, gr_null_scores, n_gr_events),
                            fixed_point_input(_source), timing, settings, kappa_fixed_points_final (rank-one:
                            [{kappa, kind}] at the end)
Every table is a deterministic function of the inputs and settings; only analysis.json holds timings.
Computing and writing are separate: ``compute_run_analysis`` returns a ``RunAnalysis`` (the tables, the
PCA frame, the points in state space, the analysis.json content) and ``write_run_analysis`` writes it;
``analyse_run`` is the two together (the pipeline's stage), and rnngeom.external analyses networks trained
elsewhere through the same two functions. The loss drop is not computed here but from the learning curve,
by rnngeom.aggregate (loss_drop.detect_in_metrics), so a change of the drop detector never re-runs this
analysis.

Settings: a JSON object (inline or a file) overriding ``default_settings()`` (nested sections hold the keyword
arguments of find_fixed_points_batched, plrnn_fixed_points, gr_scores and gr_threshold;
unknown keys are an error).
"""

from __future__ import annotations

import argparse
import copy
import functools
import inspect
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.optimize import brentq
from scipy.stats import rankdata

from rnngeom.analysis.fixed_points import (
    KINDS,
    FixedPointSet,
    find_fixed_points_batched,
    sample_starts,
    stability_kind,
)
from rnngeom.analysis.gr_events import GREvents, detect_gr_events, gr_scores, gr_threshold, gr_transition
from rnngeom.analysis.pca import PCA
from rnngeom.analysis.plrnn_exact import plrnn_fixed_points
from rnngeom.io import atomic_path, json_arg, write_json_atomic, write_tsv_atomic
from rnngeom.runtime import set_threads
from rnngeom.tasks.base import TaskData
from rnngeom.tcr import tcr_penalty

FIXED_POINT_COLUMNS = [
    "iteration",
    "point_id",
    "pc1",
    "pc2",
    "pc3",
    "q",
    "max_abs_eig",
    "n_unstable_modes",
    "kind",
]
SUMMARY_COLUMNS = [
    "iteration",
    "n_fixed",
    "n_stable",
    "n_saddle",
    "n_unstable",
    "n_slow",
    "mean_speed",
    "mean_tcr",
    "ramping_index",
    "ramping_null",
    "param_change",
]
KAPPA_FLOW_COLUMNS = ["iteration", "kappa", "dkappa", "slope", "kind"]


def _keyword_defaults(fn, exclude=()) -> dict:
    return {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind == p.KEYWORD_ONLY and name not in exclude
    }


def default_settings() -> dict:
    """Every setting of the analysis with its default (the function defaults are the single source)."""
    return {
        "n_trials": 64,  # held-out trials run through every checkpoint (the first n_trials of the file)
        "n_plot_trials": 8,  # trials whose PCA trajectories are saved for phase portraits
        "seed": 0,  # seeds the run's start set, the PLRNN region search and the ramping surrogates
        # "all": fixed points at every checkpoint, GR noise floor, scores and events; "final": fixed points at
        # the final checkpoint only, no GR (the pipeline sets it from the experiments' `analysis:` level)
        "fixed_points_at": "all",
        "device": "cpu",  # where the generic finder runs: "cpu", "cuda" or "auto"
        "num_threads": None,  # torch intra-op threads; None leaves torch's default
        # constant input for fixed points: "task" (the task's resting input), "zeros" or a list
        "input": "task",
        "n_starts": 128,  # starts (one set per run, used at every checkpoint)
        "covering_frac": 0.5,  # fraction of the starts drawn uniformly from the box the trajectories visit
        # noise of the trajectory starts, as a fraction of the trajectories' RMS spread
        "start_noise_rel": 0.05,
        "checkpoints_per_batch": 16,  # checkpoints optimised together in one batch (generic finder)
        "plrnn_method": "exact",  # "exact" (region solver) or "generic" (speed minimiser) for PLRNNs
        "kappa_grid_points": 201,  # rank-one models: grid points of the latent flow dκ(κ) per checkpoint
        "ramping_surrogates": 32,  # AR(1) surrogates per checkpoint for ramping_null
        "fixed_points": _keyword_defaults(find_fixed_points_batched, exclude=("input", "device")),
        "plrnn_exact": _keyword_defaults(plrnn_fixed_points, exclude=("start_states", "seed")),
        "gr_scores": {**_keyword_defaults(gr_scores, exclude=("coords", "scale")), "kinds": list(KINDS)},
        # GR noise floor: re-analyse n_checkpoints checkpoints (spread over training, the last included) with
        # n_reanalyses other start seeds each; the threshold is gr_threshold() of these null scores
        "gr_null": {"n_checkpoints": 3, "n_reanalyses": 4, **_keyword_defaults(gr_threshold)},
    }


def resolve_settings(overrides: dict | None) -> dict:
    """Defaults updated by overrides (one level of nesting); unknown keys raise ValueError."""
    settings = copy.deepcopy(default_settings())
    for key, value in (overrides or {}).items():
        if key not in settings:
            raise ValueError(f"unknown analysis setting {key!r}; known: {sorted(settings)}")
        if isinstance(settings[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"analysis setting {key!r} must be an object, got {value!r}")
            unknown = sorted(set(value) - set(settings[key]))
            if unknown:
                raise ValueError(
                    f"unknown analysis setting(s) {key}.{unknown}; known: {sorted(settings[key])}"
                )
            settings[key].update(value)
        else:
            settings[key] = value
    if settings["fixed_points_at"] not in ("all", "final"):
        raise ValueError(f"fixed_points_at must be 'all' or 'final', got {settings['fixed_points_at']!r}")
    if settings["plrnn_method"] not in ("exact", "generic"):
        raise ValueError(f"plrnn_method must be 'exact' or 'generic', got {settings['plrnn_method']!r}")
    if settings["input"] is None:  # null (unset) means the default
        settings["input"] = "task"
    if isinstance(settings["input"], str) and settings["input"] not in ("task", "zeros"):
        raise ValueError(
            f"analysis input must be 'task', 'zeros' or a list of numbers, got {settings['input']!r}"
        )
    if not 0.0 <= float(settings["covering_frac"]) <= 1.0:
        raise ValueError(f"covering_frac must be in [0, 1], got {settings['covering_frac']!r}")
    if int(settings["gr_null"]["n_checkpoints"]) < 1 or int(settings["gr_null"]["n_reanalyses"]) < 1:
        raise ValueError(f"gr_null needs n_checkpoints >= 1 and n_reanalyses >= 1, got {settings['gr_null']}")
    return settings


def constant_input(setting, task_name: str | None, data, n_in: int) -> tuple[np.ndarray, str]:
    """The constant input s [n_in] for the fixed points and where it came from ("task", "zeros", "explicit").

    "task": ``rnngeom.tasks.get_task(task_name).resting_input(data)``, the input of the task's delay/hold
    period (e.g. delayed addition's value channel is U(0, 1) at every step, so zeros would be off the data);
    needs the task name (from the checkpoint's run settings) and the held-out TaskData."""
    if isinstance(setting, str) and setting == "zeros":
        return np.zeros(n_in), "zeros"
    if isinstance(setting, str):  # "task" (resolve_settings allows nothing else)
        from rnngeom.tasks import get_task

        if not task_name:
            raise ValueError(
                "analysis input 'task' needs the task name in the checkpoint's run settings; "
                "set analysis.input to 'zeros' or a list instead"
            )
        if not isinstance(data, TaskData):
            raise ValueError(
                "analysis input 'task' needs the held-out TaskData (inputs, targets, mask), "
                "not only the inputs"
            )
        task = get_task(task_name)
        s = np.asarray(task.resting_input(data), dtype=np.float64).reshape(-1)
        source = "task"
    else:
        s, source = np.asarray(setting, dtype=np.float64).reshape(-1), "explicit"
    if s.shape != (n_in,) or not np.isfinite(s).all():
        raise ValueError(
            f"fixed-point input must be {n_in} finite numbers (the model's n_in), got {s.tolist()}"
        )
    return s, source


def model_dtype(model) -> torch.dtype:
    """The dtype a model computes in: its parameters' (float32 for a map without parameters)."""
    p = next(iter(model.parameters()), None)
    return torch.float32 if p is None else p.dtype


@torch.no_grad()
def trajectories(model, inputs: torch.Tensor):
    """States [n, T, S] and activity [n, T, N] of a model on inputs [n, T, n_in] (float64 numpy)."""
    out = model(inputs.to(dtype=model_dtype(model)))
    return out.states.double().cpu().numpy(), out.activity.double().cpu().numpy()


@torch.no_grad()
def given_trajectories(model, states):
    """Given states [n, T, S] and their activity under ``model.activity`` (float64 numpy), for analyses that
    receive trajectories instead of inputs."""
    st = np.asarray(states, dtype=np.float64)
    if st.ndim != 3 or st.shape[-1] != model.state_size:
        raise ValueError(f"trajectories must be [n, T, {model.state_size}] (the state size), got {st.shape}")
    act = model.activity(torch.as_tensor(st, dtype=model_dtype(model)))
    return st, act.double().cpu().numpy()


def _abs_rank_correlation_with_time(series: np.ndarray, flat_tol: float) -> np.ndarray:
    """|Spearman ρ| between each column of series [..., T, N] and time t = 1..T -> [..., N]; a column that
    varies by at most flat_tol · max(1, max|series|) counts as flat (ρ = 0)."""
    T = series.shape[-2]
    ranks = rankdata(series, axis=-2)  # ties get their average rank
    rc = ranks - ranks.mean(axis=-2, keepdims=True)
    tc = np.arange(T, dtype=np.float64) - (T - 1) / 2.0
    denom = np.sqrt((rc**2).sum(axis=-2) * (tc**2).sum())
    flat = np.ptp(series, axis=-2) <= flat_tol * max(1.0, float(np.abs(series).max()))
    rho = (rc * tc[:, None]).sum(axis=-2) / np.where(denom == 0, 1.0, denom)
    return np.abs(np.where(flat | (denom == 0), 0.0, rho))


def _valid_activity(activity) -> np.ndarray | None:
    act = np.asarray(activity, dtype=np.float64)
    if act.ndim != 3 or act.shape[1] < 3 or act.shape[2] == 0 or not np.isfinite(act).all():
        return None
    return act


def ramping_index(activity: np.ndarray, flat_tol: float = 1e-6) -> float:
    """How much the population ramps: mean over units of |ρ_i|, ρ_i the Spearman rank correlation between the
    trial-averaged activity r̄_i(t) (mean over the held-out trials) and time t = 1..T.

    |ρ_i| = 1 for a unit whose trial-averaged activity rises or falls monotonically over the whole trial
    (a ramp of any shape), ≈ 0 for a unit that fluctuates or is constant. Rank correlation makes the index
    insensitive to the ramp's shape and to saturation of tanh. Units whose r̄_i(t) varies by at most
    ``flat_tol`` · max(1, max|r̄|) over the trial count as flat (ρ = 0, no ramp) instead of giving an
    undefined correlation. activity: [n_trials, T, N]. NaN if the activity is not finite or T < 3.
    Autocorrelated activity without any ramp also scores above 0 (a slow random walk drifts): compare with
    ``ramping_null``.
    """
    act = _valid_activity(activity)
    if act is None:
        return float("nan")
    return float(_abs_rank_correlation_with_time(act.mean(axis=0), flat_tol).mean())


def _ar1(phi: np.ndarray, shape: tuple, rng) -> np.ndarray:
    """Stationary unit-variance AR(1) series [*shape, T, N] with coefficients phi [N] (T = shape[-2])."""
    noise = rng.standard_normal(shape)
    x = np.empty_like(noise)
    x[..., 0, :] = noise[..., 0, :]
    innovation = np.sqrt(1.0 - phi**2)
    for t in range(1, shape[-2]):
        x[..., t, :] = phi * x[..., t - 1, :] + innovation * noise[..., t, :]
    return x


def _lag1_autocorrelation(series: np.ndarray) -> np.ndarray:
    """Sample lag-1 autocorrelation of each column of series [..., T, N] (0 for a constant column)."""
    c = series - series.mean(axis=-2, keepdims=True)
    var = (c**2).mean(axis=-2)
    lag1 = (c[..., 1:, :] * c[..., :-1, :]).mean(axis=-2)
    return np.where(var > 0, lag1 / np.where(var > 0, var, 1.0), 0.0)


@functools.lru_cache(maxsize=8)
def _lag1_bias_table(T: int, n_series: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(φ grid, mean sample lag-1 autocorrelation of stationary AR(1) series of length T at each φ): the
    sample estimate is biased low for short series (strongly near φ = 1), so the null inverts this table."""
    phi = 1.0 - np.geomspace(1.95, 1e-3, 96)
    est = _lag1_autocorrelation(_ar1(phi, (n_series, T, len(phi)), np.random.default_rng(12345))).mean(axis=0)
    return phi, np.maximum.accumulate(est)


def ramping_null(
    activity: np.ndarray, n_surrogates: int = 32, seed: int = 0, flat_tol: float = 1e-6
) -> float:
    """The ramping index of autocorrelation-matched surrogates of the activity: what ``ramping_index`` gives
    for activity with the same autocorrelation and no ramp.

    Per unit, the trial-averaged r̄_i(t) is replaced by a stationary AR(1) series (its variance does not
    matter: the index uses ranks) whose lag-1 autocorrelation matches r̄_i's: φ_i is the AR(1) coefficient
    whose expected sample lag-1 autocorrelation over T steps equals r̄_i's (``_lag1_bias_table``; the plain
    estimate is biased low for short trials). The index is averaged over ``n_surrogates`` seeded draws; a unit
    that ramping_index counts as flat is flat here too. ramping_index − ramping_null ≈ 0 for stationary
    autocorrelated activity and > 0 for a ramp (a ramp's lag-1 autocorrelation is near 1, so its null is the
    index of a near-random walk, about 0.5). NaN where ramping_index is NaN.
    """
    act = _valid_activity(activity)
    if act is None:
        return float("nan")
    mean = act.mean(axis=0)  # [T, N]
    T = mean.shape[0]
    grid, expected = _lag1_bias_table(T)
    phi = np.interp(_lag1_autocorrelation(mean), expected, grid)  # clipped to the grid's [-0.95, 0.999]
    x = _ar1(phi, (n_surrogates, *mean.shape), np.random.default_rng(seed))
    flat = np.ptp(mean, axis=0) <= flat_tol * max(1.0, float(np.abs(mean).max()))
    return float(np.where(flat, 0.0, _abs_rank_correlation_with_time(x, flat_tol=0.0)).mean())


def kappa_flow(model, input=None, kappa_traj=None, n_grid: int = 201, pad: float = 0.05) -> pd.DataFrame:
    """The exact one-dimensional flow of a rank-one RNN's latent κ under a constant input (zeros by default).

    Derivation (rank1.py, leaky.py): with W = m nᵀ/N and constant input s, the step is
    x_t = (1−α) x_{t−1} + α (m κ(x_{t−1}) + c), κ(x) = nᵀ tanh(x)/N, c = b + W_in s. The line
    {x = m k + c} is invariant: a state x = m k + c steps to m k' + c with

        k' = k + α (f(k) − k),        f(k) = nᵀ tanh(m k + c) / N,

    and states off the line approach it as (1−α)^t (in one step for α = 1, where k_t = κ(x_{t−1})). So every
    fixed point of the network is x* = m k* + c with f(k*) = k*, and its Jacobian has eigenvalues 1−α
    (N−1 times) and the slope of the 1-D map, 1 − α + α f'(k*): the 1-D picture is exact, fixed points and
    their stability included (classified with the same rule as the general finder).

    Returned rows (columns KAPPA_FLOW_COLUMNS without iteration), sorted by kappa:
      kappa   k on a uniform grid of ``n_grid`` points, plus one row per fixed point;
      dkappa  α (f(k) − k), the change of k in one step (= f(k) − k for α = 1); zero at fixed points;
      slope   1 − α + α f'(k), the derivative of the 1-D map (|slope| < 1 at a stable fixed point);
      kind    "grid" for grid rows; the fixed point's class ("stable", "saddle", "unstable") otherwise.
    Grid range: since |f| ≤ B = mean_i |n_i|, every fixed point lies in [−B, B]; the grid spans [−B, B] and
    the trajectories' κ values ``kappa_traj`` (if given), padded by ``pad`` of the width. Fixed points are the
    sign changes of f(k) − k on the grid, refined by Brent's method (a tangency without a sign change is
    missed).
    A model with non-finite parameters gives no rows.
    """
    m = model.m.detach().double().cpu().numpy()
    n = model.n.detach().double().cpu().numpy()
    c = model.b.detach().double().cpu().numpy().copy()
    if input is not None:
        c = c + model.W_in.detach().double().cpu().numpy() @ np.asarray(input, dtype=np.float64).reshape(-1)
    alpha, N = float(model.alpha), len(n)
    empty = pd.DataFrame(columns=KAPPA_FLOW_COLUMNS[1:])
    if not (np.isfinite(m).all() and np.isfinite(n).all() and np.isfinite(c).all()):
        return empty

    def f(k):
        return np.tanh(np.multiply.outer(np.asarray(k, dtype=np.float64), m) + c) @ n / N

    def slope(k):
        sech2 = 1.0 - np.tanh(np.multiply.outer(np.asarray(k, dtype=np.float64), m) + c) ** 2
        return 1.0 - alpha + alpha * ((sech2 * m) @ n / N)

    B = float(np.abs(n).mean())
    lo, hi = -B, B
    if kappa_traj is not None:
        kt = np.asarray(kappa_traj, dtype=np.float64).ravel()
        kt = kt[np.isfinite(kt)]
        if len(kt):
            lo, hi = min(lo, float(kt.min())), max(hi, float(kt.max()))
    width = hi - lo
    if width <= 1e-12:
        lo, hi, width = lo - 1.0, hi + 1.0, 2.0
    grid = np.linspace(lo - pad * width, hi + pad * width, max(int(n_grid), 2))
    g = f(grid) - grid

    roots = [float(grid[i]) for i in np.flatnonzero(g == 0.0)]
    for i in np.flatnonzero(g[:-1] * g[1:] < 0):
        roots.append(float(brentq(lambda k: float(f(k) - k), grid[i], grid[i + 1], xtol=1e-14, rtol=1e-14)))
    roots = np.array(sorted(roots), dtype=np.float64)
    eig = slope(roots)
    eigvals = np.concatenate([eig[:, None], np.full((len(roots), N - 1), 1.0 - alpha)], axis=1)
    kinds = stability_kind(eigvals) if len(roots) else np.array([], dtype=object)

    rows = pd.DataFrame(
        {
            "kappa": np.concatenate([grid, roots]),
            "dkappa": np.concatenate([alpha * g, np.zeros(len(roots))]),
            "slope": np.concatenate([slope(grid), eig]),
            "kind": np.concatenate([np.full(len(grid), "grid", dtype=object), kinds.astype(object)]),
        }
    )
    return rows.sort_values(["kappa", "kind"], kind="stable").reset_index(drop=True)


def run_starts(states: np.ndarray, cfg: dict, seed: int) -> np.ndarray:
    """The run's start set [n_starts, S], used at every checkpoint so that consecutive checkpoints are
    compared on the same footing. states [..., S]: every checkpoint's trajectory states (pooled).

    A fraction ``covering_frac`` is drawn uniformly from the box the trajectories visit (per-dimension
    min..max, padded by 10 % of its width): starts only on trajectories miss fixed points off the visited
    path (a planted 2-unit system with 9 fixed points shows 4-5 of them). The rest are trajectory states
    plus noise of ``start_noise_rel`` x their RMS spread. No finite state at all: standard-normal starts."""
    n = int(cfg["n_starts"])
    flat = states.reshape(-1, states.shape[-1])
    flat = flat[np.isfinite(flat).all(axis=1)]
    rng = np.random.default_rng(seed)
    if len(flat) == 0:
        return rng.standard_normal((n, states.shape[-1]))
    n_cover = int(round(float(cfg["covering_frac"]) * n))
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    pad = 0.1 * (hi - lo)
    covering = rng.uniform(lo - pad, hi + pad, size=(n_cover, flat.shape[1]))
    spread = float(np.sqrt(flat.var(axis=0).mean()))
    on_path = sample_starts(flat, n - n_cover, cfg["start_noise_rel"] * spread, seed=int(rng.integers(2**31)))
    return np.concatenate([on_path, covering])


def null_checkpoint_indices(n_checkpoints: int, n_null: int) -> list[int]:
    """Indices of the checkpoints re-analysed for the GR null: n_null spread evenly over training, ending at
    the last (the richest structure, so the largest sampling noise), never the random initialisation
    unless there is nothing else."""
    if n_checkpoints <= 1:
        return [0]
    idx = np.round(np.linspace(0, n_checkpoints - 1, int(n_null) + 1)[1:]).astype(int)
    return sorted(set(idx.tolist()))


def _points_frame(iteration: int, fps: FixedPointSet, pca: PCA) -> pd.DataFrame:
    df = fps.to_frame(pca)
    df.insert(0, "iteration", int(iteration))
    return df[FIXED_POINT_COLUMNS]


def _frame_points(fps: FixedPointSet, pca: PCA, kinds) -> tuple[np.ndarray, np.ndarray]:
    """Positions in the PCA frame and kinds of the points whose kind takes part in the GR score."""
    keep = np.isin(fps.kind.astype(str), list(kinds))
    pos = pca.transform(fps.positions[keep]) if keep.any() else np.zeros((0, pca.components.shape[0]))
    return pos, fps.kind[keep]


def fixed_points_of(models, start_sets, s_in: np.ndarray, cfg: dict, *, seed, device, exact: bool):
    """Fixed-point sets of models [C] from start sets [C] x [N, S] under the constant input s_in: the exact
    PLRNN region solver (``exact``; the starts seed its region search, ``seed`` its random part) or the
    batched speed minimiser (all models in one batch)."""
    if exact:
        out = []
        for model, st in zip(models, start_sets):
            a, W, h, C = model.linear_pieces()
            c = C.double() @ torch.as_tensor(s_in, dtype=torch.float64)
            out.append(plrnn_fixed_points(a, W, h, c, start_states=st, seed=seed, **cfg["plrnn_exact"]))
        return out
    return find_fixed_points_batched(
        list(models), np.stack(start_sets), input=s_in, device=device, **cfg["fixed_points"]
    )


def reanalysis_seed(run_seed: int, r: int) -> int:
    """Seed of the r-th re-analysis (r >= 1) of a run with seed run_seed (r = 0: the main analysis)."""
    return int(run_seed) + 1000003 * int(r)


def reanalysis_scores(
    model,
    main: FixedPointSet,
    visited: np.ndarray,
    s_in,
    pca: PCA,
    cfg: dict,
    rs,
    *,
    device=None,
    exact: bool = False,
) -> list[float]:
    """GR scores between the main analysis of one network and its re-analyses r in ``rs`` (start sets of
    ``reanalysis_seed(cfg["seed"], r)``): identical networks, so each score is start-sampling noise."""
    seeds = [reanalysis_seed(cfg["seed"], r) for r in rs]
    starts = [run_starts(visited, cfg, sd) for sd in seeds]
    if exact:  # the region search's random part is seeded too
        sets = [
            fixed_points_of([model], [st], s_in, cfg, seed=sd, device=device, exact=True)[0]
            for st, sd in zip(starts, seeds)
        ]
    else:
        sets = fixed_points_of([model] * len(seeds), starts, s_in, cfg, seed=None, device=device, exact=False)
    kinds = cfg["gr_scores"]["kinds"]
    score_cfg = {k: v for k, v in cfg["gr_scores"].items() if k != "kinds"}
    return [
        gr_transition(
            *_frame_points(main, pca, kinds), *_frame_points(fps, pca, kinds), scale=pca.scale, **score_cfg
        )["score"]
        for fps in sets
    ]


def parameter_vector(model) -> np.ndarray:
    """Every parameter of ``model`` in one float64 vector (in named_parameters order; empty if none)."""
    parts = [p.detach().double().cpu().numpy().ravel() for p in model.parameters()]
    return np.concatenate(parts) if parts else np.zeros(0)


def _finite_median(values) -> float | None:
    """Median of the finite values, None (JSON null) when there are none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else None


@dataclass
class RunAnalysis:
    """Everything the analysis of one run computes (``compute_run_analysis``); ``write_run_analysis``
    writes it as the run's analysis folder (the module docstring lists the files)."""

    iterations: list[int]  # every checkpoint, in order
    fixed_points: pd.DataFrame  # fixed_points.tsv (FIXED_POINT_COLUMNS): positions in the run's PCA frame
    checkpoint_summary: pd.DataFrame  # checkpoint_summary.tsv (SUMMARY_COLUMNS)
    kappa_flow: pd.DataFrame  # kappa_flow.tsv (KAPPA_FLOW_COLUMNS; header only but for rank-one models)
    gr: GREvents  # gr_scores.tsv (gr.scores), events.tsv (gr.events), t_GR, t_GR_max, the threshold
    pcs: np.ndarray  # [C, n_plot_trials, T, 3] float32: trajectories in the PCA frame (trajectories_pca.npz)
    pca: PCA  # the run's fixed frame, fitted on the final model's trajectories
    point_sets: dict[int, FixedPointSet]  # iteration -> the points in the model's own flat state space
    info: dict  # analysis.json: GR fields, noise floor, input, method, timing, settings

    @property
    def t_GR(self) -> int | None:
        return self.gr.t_gr

    @property
    def gr_threshold(self) -> float | None:
        return self.info["gr_threshold"]

    @property
    def gr_noise_floor(self) -> float | None:
        return self.info["gr_noise_floor"]


def compute_run_analysis(checkpoints, data, settings: dict | None = None, *, states_at=None) -> RunAnalysis:
    """Analyse one run (see the module docstring), writing nothing.

    checkpoints: anything with ``.iterations`` and ``.model_at(it)`` (rnngeom.checkpoints.Checkpoints; its
        ``.run`` settings name the task for ``input: task``). A model follows the RecurrentModel contract:
        a flat state, ``step(x, s)``, ``activity(x)``, ``n_in``, ``state_size``, and called on inputs
        [n, T, n_in] it returns ModelOutput (rnngeom.adapters wraps torch.nn.RNN/GRU/LSTM and bare maps).
    data: the held-out TaskData (or only its inputs [n_trials, T, n_in], when input is not "task").
    states_at: optional ``(iteration, model) -> states [n, T, state_size]``: given trajectories, used instead
        of running each checkpoint's model on ``data`` (which may then be None; activity = model.activity).
    """
    t_start = time.perf_counter()
    cfg = resolve_settings(settings)
    if cfg["num_threads"]:
        set_threads(int(cfg["num_threads"]))
    iterations = list(checkpoints.iterations)
    if not iterations:
        raise ValueError("the checkpoint file holds no snapshots")
    x_in = None
    if states_at is None:
        inputs = data.inputs if isinstance(data, TaskData) else np.asarray(data)
        x_in = torch.as_tensor(np.asarray(inputs[: cfg["n_trials"]], dtype=np.float32))
    device = cfg["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"

    def run_states(model, it):
        if states_at is None:
            return trajectories(model, x_in)
        return given_trajectories(model, states_at(it, model)[: cfg["n_trials"]])

    # PCA frame from the final model's trajectories.
    final = checkpoints.model_at(iterations[-1])
    final_states, _ = run_states(final, iterations[-1])
    pca = PCA.fit(final_states.reshape(-1, final_states.shape[-1]), n_components=3)
    use_exact = cfg["plrnn_method"] == "exact" and hasattr(final, "linear_pieces")
    is_rank1 = getattr(final, "arch", None) == "rank1"
    task_name = (getattr(checkpoints, "run", None) or {}).get("task")
    s_in, input_source = constant_input(cfg["input"], task_name, data, final.n_in)

    # 1. Trajectories and slow dynamics of every checkpoint.
    summary_rows, pcs_for_plots, flow_frames, visited = [], [], [], []
    previous = None
    for k, it in enumerate(iterations):
        model = checkpoints.model_at(it)
        theta = parameter_vector(model)
        st, act = run_states(model, it)
        visited.append(st.reshape(-1, st.shape[-1]))
        pcs_for_plots.append(pca.transform(st[: cfg["n_plot_trials"]]).astype(np.float32))
        summary_rows.append(
            {
                "iteration": int(it),
                "mean_speed": float(np.linalg.norm(np.diff(st, axis=1), axis=-1).mean()),
                "mean_tcr": float(tcr_penalty(torch.from_numpy(act))),
                "ramping_index": ramping_index(act),
                "ramping_null": ramping_null(act, cfg["ramping_surrogates"], seed=cfg["seed"] * 100003 + k),
                # ‖θ_k − θ_{k−1}‖: the plain weight motion into this checkpoint (claim C2's control); NaN for
                # a map without parameters
                "param_change": (
                    math.nan
                    if previous is None or theta.size == 0
                    else float(np.linalg.norm(theta - previous))
                ),
            }
        )
        previous = theta
        if is_rank1:
            kappa_traj = act @ model.n.detach().double().numpy() / model.n_hidden
            flow = kappa_flow(model, s_in, kappa_traj=kappa_traj, n_grid=cfg["kappa_grid_points"])
            flow.insert(0, "iteration", int(it))
            flow_frames.append(flow)
    visited = np.concatenate(visited)

    # 2. Fixed points at every checkpoint (or the final one only), all from the run's one start set.
    every = cfg["fixed_points_at"] == "all"
    fp_iterations = iterations if every else iterations[-1:]
    starts = run_starts(visited, cfg, seed=cfg["seed"])
    chunk = max(1, int(cfg["checkpoints_per_batch"]))
    sets, seconds_per_ckpt = [], []
    for c0 in range(0, len(fp_iterations), chunk):
        t0 = time.perf_counter()
        its = fp_iterations[c0 : c0 + chunk]
        sets += fixed_points_of(
            [checkpoints.model_at(it) for it in its],
            [starts] * len(its),
            s_in,
            cfg,
            seed=cfg["seed"],
            device=device,
            exact=use_exact,
        )
        seconds_per_ckpt += [(time.perf_counter() - t0) / len(its)] * len(
            its
        )  # one computation: share its time

    # 3. GR noise floor: re-analyse a few checkpoints with other start sets, score each against the main one.
    t_null = time.perf_counter()
    null_cfg = cfg["gr_null"]
    null_rows = []
    for j in null_checkpoint_indices(len(iterations), null_cfg["n_checkpoints"]) if every else []:
        rs = range(1, int(null_cfg["n_reanalyses"]) + 1)
        scores_j = reanalysis_scores(
            checkpoints.model_at(iterations[j]),
            sets[j],
            visited,
            s_in,
            pca,
            cfg,
            rs,
            device=device,
            exact=use_exact,
        )
        null_rows += [
            {"iteration": int(iterations[j]), "reanalysis": r + 1, "score": sc}
            for r, sc in enumerate(scores_j)
        ]
    null_scores = np.array([row["score"] for row in null_rows], dtype=np.float64)
    threshold = (
        gr_threshold(null_scores, margin=null_cfg["margin"], min_threshold=null_cfg["min_threshold"])
        if every
        else math.nan
    )
    null_seconds = time.perf_counter() - t_null

    point_frames = [_points_frame(it, fps, pca) for it, fps in zip(fp_iterations, sets)]
    sets_at = dict(zip(fp_iterations, sets))
    for row in summary_rows:
        if row["iteration"] not in sets_at:  # not analysed (fixed_points_at: final): counts unknown
            continue
        n = sets_at[row["iteration"]].counts()
        row.update(
            {
                "n_fixed": n["stable"] + n["saddle"] + n["unstable"],
                "n_stable": n["stable"],
                "n_saddle": n["saddle"],
                "n_unstable": n["unstable"],
                "n_slow": n["slow"],
            }
        )
    points = (
        pd.concat(point_frames, ignore_index=True)
        if point_frames
        else pd.DataFrame(columns=FIXED_POINT_COLUMNS)
    )
    summary = pd.DataFrame(summary_rows).reindex(columns=SUMMARY_COLUMNS)
    if not every:  # integers with gaps, written as empty cells (as the full analysis writes them, no ".0")
        counts = ["n_fixed", "n_stable", "n_saddle", "n_unstable", "n_slow"]
        summary[counts] = summary[counts].astype("Int64")
    flows = [f for f in flow_frames if not f.empty]
    flow_table = (
        pd.concat(flows, ignore_index=True)[KAPPA_FLOW_COLUMNS]
        if flows
        else pd.DataFrame(columns=KAPPA_FLOW_COLUMNS)
    )

    # GR events: every transition judged against the run's calibrated threshold.
    gr = detect_gr_events(gr_scores(points, fp_iterations, scale=pca.scale, **cfg["gr_scores"]), threshold)

    per_ckpt = np.asarray(seconds_per_ckpt, dtype=float)
    info = {
        "t_GR": gr.t_gr,
        "t_GR_max": gr.t_gr_max,
        "gr_threshold": None if math.isnan(gr.threshold) else gr.threshold,  # NaN -> null: strict JSON
        "gr_noise_floor": _finite_median(null_scores),
        "gr_null_scores": null_rows,
        "n_gr_events": int(len(gr.events)),
        "n_checkpoints": len(iterations),
        "final_counts": summary.iloc[-1][["n_fixed", "n_stable", "n_saddle", "n_unstable", "n_slow"]]
        .astype(int)
        .to_dict(),
        "kappa_fixed_points_final": (
            None
            if not is_rank1
            else [
                {"kappa": float(r.kappa), "kind": r.kind}
                for r in flow_table[
                    (flow_table["iteration"] == iterations[-1]) & (flow_table["kind"] != "grid")
                ].itertuples()
            ]
        ),
        "fixed_point_input": [float(v) for v in s_in],
        "fixed_point_input_source": input_source,
        "method": "plrnn_exact" if use_exact else "speed_minimiser",
        "state_size": int(final_states.shape[-1]),
        "device": str(device),
        "pca": pca.to_dict(),
        "timing": {
            "total_s": time.perf_counter() - t_start,
            "fixed_points_mean_s_per_checkpoint": float(per_ckpt.mean()),
            "fixed_points_s_per_checkpoint": {str(i): float(s) for i, s in zip(fp_iterations, per_ckpt)},
            "gr_null_s": null_seconds,
            "num_threads": torch.get_num_threads(),
        },
        "settings": cfg,
    }
    return RunAnalysis(
        iterations=[int(i) for i in iterations],
        fixed_points=points,
        checkpoint_summary=summary,
        kappa_flow=flow_table,
        gr=gr,
        pcs=np.stack(pcs_for_plots),
        pca=pca,
        point_sets=sets_at,
        info=info,
    )


def write_run_analysis(analysis: RunAnalysis, out_dir) -> dict:
    """Write a run's analysis folder (the module docstring lists the files, each written atomically);
    returns the analysis.json content."""
    out_dir = Path(out_dir)
    write_tsv_atomic(out_dir / "fixed_points.tsv", analysis.fixed_points)
    write_tsv_atomic(out_dir / "checkpoint_summary.tsv", analysis.checkpoint_summary)
    write_tsv_atomic(out_dir / "kappa_flow.tsv", analysis.kappa_flow)
    write_tsv_atomic(out_dir / "gr_scores.tsv", analysis.gr.scores)
    write_tsv_atomic(out_dir / "events.tsv", analysis.gr.events)
    with atomic_path(out_dir / "trajectories_pca.npz") as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            iterations=np.asarray(analysis.iterations, dtype=np.int64),
            pcs=analysis.pcs,
            pca_mean=analysis.pca.mean,
            pca_components=analysis.pca.components,
        )
    write_json_atomic(out_dir / "analysis.json", analysis.info)
    return analysis.info


def analyse_run(checkpoints, data, out_dir, settings: dict | None = None) -> dict:
    """Analyse one run and write its analysis folder: ``compute_run_analysis`` then ``write_run_analysis``
    (the pipeline's per-run stage); returns the analysis.json content."""
    return write_run_analysis(compute_run_analysis(checkpoints, data, settings), out_dir)


def _per_run_settings(settings, n_runs: int) -> list[dict]:
    """--settings as one overrides object per run: one object for all, or a list of n_runs objects."""
    if isinstance(settings, dict):
        return [copy.deepcopy(settings) for _ in range(n_runs)]
    if isinstance(settings, list) and len(settings) == n_runs and all(isinstance(x, dict) for x in settings):
        return settings
    raise ValueError(f"--settings must be a JSON object or a list of {n_runs} objects (one per run)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="held-out task data (.npz with inputs/targets/mask)")
    ap.add_argument(
        "--run-dir",
        nargs="+",
        action="extend",
        help="run folder(s) of one task with checkpoints.pt; each gets <run-dir>/analysis",
    )
    ap.add_argument("--checkpoints", help="one run's checkpoints.pt (instead of --run-dir)")
    ap.add_argument("--out-dir", help="that run's analysis folder")
    ap.add_argument(
        "--settings",
        help="analysis settings overrides: a JSON object, or a list of one per --run-dir; or @file.json",
    )
    ap.add_argument("--manifest", help="with --run-dir: write the block manifest (rnngeom.blocks) at the end")
    ap.add_argument("--threads", type=int, help="torch threads (overrides settings.num_threads)")
    ap.add_argument("--device", choices=["cpu", "cuda", "auto"], help="overrides settings.device")
    args = ap.parse_args(argv)

    from rnngeom.blocks import write_manifest
    from rnngeom.checkpoints import load_checkpoints

    single = (args.checkpoints, args.out_dir)
    if args.run_dir and any(single):
        ap.error("give either --run-dir or --checkpoints/--out-dir, not both")
    if args.run_dir:
        jobs = [(Path(d) / "checkpoints.pt", Path(d) / "analysis") for d in args.run_dir]
    elif all(single):
        if args.manifest:
            ap.error("--manifest needs --run-dir")
        jobs = [single]
    else:
        ap.error("give --run-dir, or both --checkpoints and --out-dir")
    try:
        per_run = _per_run_settings(json_arg(args.settings or "{}", "--settings"), len(jobs))
        for overrides in per_run:
            if args.threads:
                overrides["num_threads"] = args.threads
            if args.device:
                overrides["device"] = args.device
            resolve_settings(overrides)  # every run's settings checked before the first run is analysed
    except ValueError as err:
        ap.error(str(err))
    missing = [str(ckpt) for ckpt, _ in jobs if not Path(ckpt).exists()]
    if missing:
        ap.error(f"missing run files: {missing[:5]}")
    with np.load(args.data) as z:
        data = TaskData(inputs=z["inputs"], targets=z["targets"], mask=z["mask"])
    for (ckpt, out_dir), overrides in zip(jobs, per_run):
        result = analyse_run(load_checkpoints(ckpt), data, out_dir, overrides)
        threshold = "none" if result["gr_threshold"] is None else f"{result['gr_threshold']:.3g}"
        print(
            f"analysed {result['n_checkpoints']} checkpoints in {result['timing']['total_s']:.1f} s: "
            f"t_GR={result['t_GR']} (GR threshold {threshold}) -> {out_dir}"
        )
    if args.manifest:
        write_manifest(args.manifest, "analysis", args.run_dir)


if __name__ == "__main__":
    main()
