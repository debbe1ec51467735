"""Phase-space analysis of one training run: fixed/slow points at every checkpoint, loss drop, GR events.

    python -m rnngeom.analysis.run_analysis --checkpoints runs/x/checkpoints.pt --data data/task/test.npz \\
        --metrics runs/x/metrics.tsv --out-dir runs/x/analysis [--settings '{...}' | @file.json] [--threads N]

Steps:
1. Run every checkpoint's model on the same first ``n_trials`` held-out trials (trajectories).
2. Fit a PCA frame once, on the final model's trajectories; everything is projected into it.
3. Fixed points at every checkpoint under a constant input (zeros by default): the exact region solver for
   PLRNNs (``plrnn_method="exact"``), the batched speed minimiser otherwise, with starts sampled from that
   checkpoint's own trajectories plus noise; ``checkpoints_per_batch`` checkpoints are optimised together.
4. Slow dynamics at every checkpoint: mean hidden-state speed, the TCR penalty and the ramping index
   (``ramping_index``) of the held-out trajectories.
5. Rank-one models only: the exact one-dimensional flow of the latent κ at every checkpoint (``kappa_flow``).
6. Loss drop (t_drop, plateau, sharpness) from the metrics table.
7. GR scores between consecutive checkpoints and GR events (t_GR).

Outputs in --out-dir (each written atomically):
    fixed_points.tsv        iteration, point_id, pc1..pc3, q, max_abs_eig, n_unstable_modes, kind
    checkpoint_summary.tsv  iteration, n_fixed (= stable + saddle + unstable), n_stable, n_saddle, n_unstable,
                            n_slow, mean_speed (mean ‖x_t − x_{t−1}‖ along the trajectories), mean_tcr
                            (mean (r_t − r_{t−1})², the TCR penalty), ramping_index (see ``ramping_index``:
                            mean over units of |Spearman ρ| between the trial-averaged rate r̄_i(t) and t)
    kappa_flow.tsv          rank-one runs (arch "rank1"): the 1-D flow of the latent κ at every checkpoint (see
                            ``kappa_flow``): iteration, kappa, dkappa, slope, kind (grid | stable | saddle |
                            unstable; the non-grid rows are the fixed points). Other architectures: the header only
    gr_scores.tsv           one row per consecutive checkpoint pair (gr_events.SCORE_COLUMNS)
    events.tsv              the GR events (gr_events.EVENT_COLUMNS), possibly no rows
    trajectories_pca.npz    iterations [C], pcs [C, n_plot_trials, T, 3] (for phase portraits), pca_mean,
                            pca_components
    analysis.json           t_drop, has_drop, plateau_length, drop_sharpness, ..., t_GR, timing, settings,
                            kappa_fixed_points_final (rank-one: [{kappa, kind}] at the last checkpoint)
Every table is a deterministic function of the inputs and settings; only analysis.json holds timings.

Settings: a JSON object (inline or a file) overriding ``default_settings()`` (nested sections hold the keyword arguments of
find_fixed_points_batched, plrnn_fixed_points, detect_loss_drop, gr_scores and detect_gr_events; unknown
keys are an error).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import time
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
from rnngeom.analysis.gr_events import detect_gr_events, gr_scores
from rnngeom.analysis.loss_drop import detect_loss_drop
from rnngeom.analysis.pca import PCA
from rnngeom.analysis.plrnn_exact import plrnn_fixed_points
from rnngeom.io import atomic_path, json_arg, write_json_atomic, write_tsv_atomic
from rnngeom.tcr import tcr_penalty

FIXED_POINT_COLUMNS = ["iteration", "point_id", "pc1", "pc2", "pc3", "q", "max_abs_eig", "n_unstable_modes", "kind"]
SUMMARY_COLUMNS = ["iteration", "n_fixed", "n_stable", "n_saddle", "n_unstable", "n_slow", "mean_speed",
                   "mean_tcr", "ramping_index"]
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
        "seed": 0,  # seeds start sampling (plus the checkpoint's index) and the PLRNN region search
        "device": "cpu",  # where the generic finder runs: "cpu", "cuda" or "auto"
        "num_threads": None,  # torch intra-op threads; None leaves torch's default
        "input": None,  # constant input [n_in] for fixed points; None = zeros
        "n_starts": 128,  # starts per checkpoint
        "start_noise_rel": 0.05,  # start noise std, as a fraction of the trajectories' RMS spread per dim
        "checkpoints_per_batch": 16,  # checkpoints optimised together in one batch (generic finder)
        "plrnn_method": "exact",  # "exact" (region solver) or "generic" (speed minimiser) for PLRNNs
        "loss_column": "task_loss",  # metrics column for the loss drop
        "kappa_grid_points": 201,  # rank-one models: grid points of the latent flow dκ(κ) per checkpoint
        "fixed_points": _keyword_defaults(find_fixed_points_batched, exclude=("input", "device")),
        "plrnn_exact": _keyword_defaults(plrnn_fixed_points, exclude=("start_states", "seed")),
        "loss_drop": _keyword_defaults(detect_loss_drop),
        "gr_scores": {**_keyword_defaults(gr_scores, exclude=("coords", "scale")), "kinds": list(KINDS)},
        "gr_events": _keyword_defaults(detect_gr_events),
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
                raise ValueError(f"unknown analysis setting(s) {key}.{unknown}; known: {sorted(settings[key])}")
            settings[key].update(value)
        else:
            settings[key] = value
    if settings["plrnn_method"] not in ("exact", "generic"):
        raise ValueError(f"plrnn_method must be 'exact' or 'generic', got {settings['plrnn_method']!r}")
    return settings


@torch.no_grad()
def trajectories(model, inputs: torch.Tensor):
    """States [n, T, S] and activity [n, T, N] of a model on inputs [n, T, n_in] (float64 numpy)."""
    out = model(inputs.to(dtype=next(model.parameters()).dtype))
    return out.states.double().cpu().numpy(), out.activity.double().cpu().numpy()


def ramping_index(activity: np.ndarray, flat_tol: float = 1e-6) -> float:
    """How much the population ramps: mean over units of |ρ_i|, ρ_i the Spearman rank correlation between the
    trial-averaged activity r̄_i(t) (mean over the held-out trials) and time t = 1..T.

    |ρ_i| = 1 for a unit whose trial-averaged activity rises or falls monotonically over the whole trial
    (a ramp of any shape), ≈ 0 for a unit that fluctuates or is constant. Rank correlation makes the index
    insensitive to the ramp's shape and to saturation of tanh. Units whose r̄_i(t) varies by at most
    ``flat_tol`` · max(1, max|r̄|) over the trial count as flat (ρ = 0, no ramp) instead of giving an
    undefined correlation. activity: [n_trials, T, N]. NaN if the activity is not finite or T < 3.
    """
    act = np.asarray(activity, dtype=np.float64)
    if act.ndim != 3 or act.shape[1] < 3 or act.shape[2] == 0 or not np.isfinite(act).all():
        return float("nan")
    mean = act.mean(axis=0)  # [T, N]
    T = mean.shape[0]
    ranks = rankdata(mean, axis=0)  # ties get their average rank
    rc = ranks - ranks.mean(axis=0)
    tc = np.arange(T, dtype=np.float64) - (T - 1) / 2.0
    denom = np.sqrt((rc**2).sum(axis=0) * (tc**2).sum())
    flat = np.ptp(mean, axis=0) <= flat_tol * max(1.0, float(np.abs(mean).max()))
    rho = np.where(flat | (denom == 0), 0.0, (rc * tc[:, None]).sum(axis=0) / np.where(denom == 0, 1.0, denom))
    return float(np.abs(rho).mean())


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
    Grid range: since |f| ≤ B = mean_i |n_i|, every fixed point lies in [−B, B]; the grid spans [−B, B] and the
    trajectories' κ values ``kappa_traj`` (if given), padded by ``pad`` of the width. Fixed points are the sign
    changes of f(k) − k on the grid, refined by Brent's method (a tangency without a sign change is missed).
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

    rows = pd.DataFrame({
        "kappa": np.concatenate([grid, roots]),
        "dkappa": np.concatenate([alpha * g, np.zeros(len(roots))]),
        "slope": np.concatenate([slope(grid), eig]),
        "kind": np.concatenate([np.full(len(grid), "grid", dtype=object), kinds.astype(object)]),
    })  # fmt: skip
    return rows.sort_values(["kappa", "kind"], kind="stable").reset_index(drop=True)


def _starts_for(states: np.ndarray, cfg: dict, seed: int) -> np.ndarray:
    """n_starts states from the trajectories plus noise relative to their spread; a checkpoint whose
    trajectories all diverged (no finite state) gets standard-normal starts instead."""
    flat = states.reshape(-1, states.shape[-1])
    flat = flat[np.isfinite(flat).all(axis=1)]
    if len(flat) == 0:
        return np.random.default_rng(seed).standard_normal((cfg["n_starts"], states.shape[-1]))
    spread = float(np.sqrt(flat.var(axis=0).mean()))
    return sample_starts(flat, cfg["n_starts"], cfg["start_noise_rel"] * spread, seed=seed)


def _points_frame(iteration: int, fps: FixedPointSet, pca: PCA) -> pd.DataFrame:
    df = fps.to_frame(pca)
    df.insert(0, "iteration", int(iteration))
    return df[FIXED_POINT_COLUMNS]


def analyse_run(checkpoints, inputs: np.ndarray, metrics: pd.DataFrame, out_dir, settings: dict | None = None):
    """Analyse one run (see the module docstring); returns the analysis.json content.

    checkpoints: anything with ``.iterations`` and ``.model_at(it)`` (rnngeom.checkpoints.Checkpoints).
    inputs: held-out inputs [n_trials, T, n_in]; metrics: the run's metrics table.
    """
    t_start = time.perf_counter()
    cfg = resolve_settings(settings)
    if cfg["num_threads"]:
        torch.set_num_threads(int(cfg["num_threads"]))
    out_dir = Path(out_dir)
    iterations = list(checkpoints.iterations)
    if not iterations:
        raise ValueError("the checkpoint file holds no snapshots")
    x_in = torch.as_tensor(np.asarray(inputs[: cfg["n_trials"]], dtype=np.float32))
    device = cfg["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"

    # PCA frame from the final model's trajectories.
    final = checkpoints.model_at(iterations[-1])
    final_states, _ = trajectories(final, x_in)
    pca = PCA.fit(final_states.reshape(-1, final_states.shape[-1]), n_components=3)
    use_exact = cfg["plrnn_method"] == "exact" and hasattr(final, "linear_pieces")

    is_rank1 = getattr(final, "arch", None) == "rank1"

    point_frames, summary_rows, pcs_for_plots, seconds_per_ckpt, flow_frames = [], [], [], [], []
    chunk = max(1, int(cfg["checkpoints_per_batch"]))
    for c0 in range(0, len(iterations), chunk):
        t0 = time.perf_counter()
        its = iterations[c0 : c0 + chunk]
        models = [checkpoints.model_at(it) for it in its]
        states, starts, speeds = [], [], []
        for k, model in enumerate(models):
            st, act = trajectories(model, x_in)
            states.append(st)
            pcs_for_plots.append(pca.transform(st[: cfg["n_plot_trials"]]).astype(np.float32))
            starts.append(_starts_for(st, cfg, seed=cfg["seed"] * 100003 + c0 + k))
            speeds.append((float(np.linalg.norm(np.diff(st, axis=1), axis=-1).mean()),
                           float(tcr_penalty(torch.from_numpy(act))), ramping_index(act)))
            if is_rank1:
                kappa_traj = act @ model.n.detach().double().numpy() / model.n_hidden
                flow = kappa_flow(model, cfg["input"], kappa_traj=kappa_traj, n_grid=cfg["kappa_grid_points"])
                flow.insert(0, "iteration", int(its[k]))
                flow_frames.append(flow)
        if use_exact:
            sets = []
            for model, st in zip(models, starts):
                a, W, h, C = model.linear_pieces()
                c = None if cfg["input"] is None else C.double() @ torch.as_tensor(cfg["input"], dtype=torch.float64)
                sets.append(plrnn_fixed_points(a, W, h, c, start_states=st, seed=cfg["seed"], **cfg["plrnn_exact"]))
        else:
            sets = find_fixed_points_batched(models, np.stack(starts), input=cfg["input"], device=device,
                                             **cfg["fixed_points"])
        seconds = (time.perf_counter() - t0) / len(its)  # the chunk is one computation: share its time
        for it, fps, (speed, tcr, ramp) in zip(its, sets, speeds):
            point_frames.append(_points_frame(it, fps, pca))
            n = fps.counts()
            summary_rows.append({
                "iteration": int(it), "n_fixed": n["stable"] + n["saddle"] + n["unstable"],
                "n_stable": n["stable"], "n_saddle": n["saddle"], "n_unstable": n["unstable"], "n_slow": n["slow"],
                "mean_speed": speed, "mean_tcr": tcr, "ramping_index": ramp,
            })
            seconds_per_ckpt.append(seconds)

    points = pd.concat(point_frames, ignore_index=True) if point_frames else pd.DataFrame(columns=FIXED_POINT_COLUMNS)
    summary = pd.DataFrame(summary_rows, columns=SUMMARY_COLUMNS)
    flows = [f for f in flow_frames if not f.empty]
    flow_table = (pd.concat(flows, ignore_index=True)[KAPPA_FLOW_COLUMNS] if flows
                  else pd.DataFrame(columns=KAPPA_FLOW_COLUMNS))  # fmt: skip

    # Loss drop. (Time-to-learn is computed once, in rnngeom.aggregate, which knows per-task thresholds and
    # divergence; keeping it out of here means a threshold change never re-runs the analysis.)
    for col in ("iteration", cfg["loss_column"]):
        if col not in metrics.columns:
            raise ValueError(f"metrics table lacks column {col!r}; it has {list(metrics.columns)}")
    drop = detect_loss_drop(metrics["iteration"], metrics[cfg["loss_column"]], **cfg["loss_drop"])

    # GR events.
    scores = gr_scores(points, iterations, scale=pca.scale, **cfg["gr_scores"])
    gr = detect_gr_events(scores, **cfg["gr_events"])

    write_tsv_atomic(out_dir / "fixed_points.tsv", points)
    write_tsv_atomic(out_dir / "checkpoint_summary.tsv", summary)
    write_tsv_atomic(out_dir / "kappa_flow.tsv", flow_table)
    write_tsv_atomic(out_dir / "gr_scores.tsv", scores)
    write_tsv_atomic(out_dir / "events.tsv", gr.events)
    with atomic_path(out_dir / "trajectories_pca.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, iterations=np.asarray(iterations, dtype=np.int64), pcs=np.stack(pcs_for_plots),
                 pca_mean=pca.mean, pca_components=pca.components)

    per_ckpt = np.asarray(seconds_per_ckpt, dtype=float)
    result = {
        **{k: v for k, v in drop.to_dict().items()},
        "t_GR": gr.t_gr,
        "gr_threshold": gr.threshold,
        "gr_baseline_median": gr.baseline_median,
        "gr_baseline_mad": gr.baseline_mad,
        "gr_reason": gr.reason,
        "n_gr_events": int(len(gr.events)),
        "gr_before_drop": (None if gr.t_gr is None or drop.t_drop is None else bool(gr.t_gr < drop.t_drop)),
        "n_checkpoints": len(iterations),
        "final_counts": summary.iloc[-1][["n_fixed", "n_stable", "n_saddle", "n_unstable", "n_slow"]].astype(int).to_dict(),
        "kappa_fixed_points_final": (None if not is_rank1 else [
            {"kappa": float(r.kappa), "kind": r.kind} for r in flow_table[
                (flow_table["iteration"] == iterations[-1]) & (flow_table["kind"] != "grid")].itertuples()
        ]),  # fmt: skip
        "method": "plrnn_exact" if use_exact else "speed_minimiser",
        "state_size": int(final_states.shape[-1]),
        "device": str(device),
        "pca": pca.to_dict(),
        "timing": {
            "total_s": time.perf_counter() - t_start,
            "fixed_points_mean_s_per_checkpoint": float(per_ckpt.mean()),
            "fixed_points_s_per_checkpoint": {str(i): float(s) for i, s in zip(iterations, per_ckpt)},
            "num_threads": torch.get_num_threads(),
        },
        "settings": cfg,
    }
    write_json_atomic(out_dir / "analysis.json", result)
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", required=True, help="the run's checkpoints.pt")
    ap.add_argument("--data", required=True, help="held-out task data (.npz with inputs/targets/mask)")
    ap.add_argument("--metrics", required=True, help="the run's metrics.tsv")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--settings", help="overrides of the analysis settings: a JSON object, or @file.json")
    ap.add_argument("--threads", type=int, help="torch threads (overrides settings.num_threads)")
    ap.add_argument("--device", choices=["cpu", "cuda", "auto"], help="overrides settings.device")
    args = ap.parse_args(argv)

    from rnngeom.checkpoints import load_checkpoints

    try:
        overrides = json_arg(args.settings or "{}", "--settings")
    except ValueError as err:
        ap.error(str(err))
    if args.threads:
        overrides["num_threads"] = args.threads
    if args.device:
        overrides["device"] = args.device
    with np.load(args.data) as data:
        inputs = data["inputs"]
    metrics = pd.read_csv(args.metrics, sep="\t")
    result = analyse_run(load_checkpoints(args.checkpoints), inputs, metrics, args.out_dir, overrides)
    print(
        f"analysed {result['n_checkpoints']} checkpoints in {result['timing']['total_s']:.1f} s: "
        f"has_drop={result['has_drop']} t_drop={result['t_drop']} t_GR={result['t_GR']} -> {args.out_dir}"
    )


if __name__ == "__main__":
    main()
