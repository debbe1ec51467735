"""Phase-space analysis of one training run: fixed/slow points at every checkpoint, loss drop, GR events.

    python -m rnngeom.analysis.run_analysis --checkpoints runs/x/checkpoints.pt --data data/task/test.npz \\
        --metrics runs/x/metrics.tsv --out-dir runs/x/analysis [--settings '{...}' | settings.json] [--threads N]

Steps:
1. Run every checkpoint's model on the same first ``n_trials`` held-out trials (trajectories).
2. Fit a PCA frame once, on the final model's trajectories; everything is projected into it.
3. Fixed points at every checkpoint under a constant input (zeros by default): the exact region solver for
   PLRNNs (``plrnn_method="exact"``), the batched speed minimiser otherwise, with starts sampled from that
   checkpoint's own trajectories plus noise; ``checkpoints_per_batch`` checkpoints are optimised together.
4. Loss drop (t_drop, plateau, sharpness) from the metrics table.
5. GR scores between consecutive checkpoints and GR events (t_GR).

Outputs in --out-dir (each written atomically):
    fixed_points.tsv        iteration, point_id, pc1..pc3, q, max_abs_eig, n_unstable_modes, kind
    checkpoint_summary.tsv  iteration, n_fixed (= stable + saddle + unstable), n_stable, n_saddle, n_unstable,
                            n_slow, mean_speed (mean ‖x_t − x_{t−1}‖ along the trajectories), mean_tcr
                            (mean (r_t − r_{t−1})², the TCR penalty)
    gr_scores.tsv           one row per consecutive checkpoint pair (gr_events.SCORE_COLUMNS)
    events.tsv              the GR events (gr_events.EVENT_COLUMNS), possibly no rows
    trajectories_pca.npz    iterations [C], pcs [C, n_plot_trials, T, 3] (for phase portraits), pca_mean,
                            pca_components
    analysis.json           t_drop, has_drop, plateau_length, drop_sharpness, ..., t_GR, timing, settings
Every table is a deterministic function of the inputs and settings; only analysis.json holds timings.

Settings: a JSON object (inline or a file) overriding ``default_settings()`` (nested sections hold the keyword arguments of
find_fixed_points_batched, plrnn_fixed_points, detect_loss_drop, gr_scores and detect_gr_events; unknown
keys are an error).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnngeom.analysis.fixed_points import KINDS, FixedPointSet, find_fixed_points_batched, sample_starts
from rnngeom.analysis.gr_events import detect_gr_events, gr_scores
from rnngeom.analysis.loss_drop import detect_loss_drop
from rnngeom.analysis.pca import PCA
from rnngeom.analysis.plrnn_exact import plrnn_fixed_points
from rnngeom.io import atomic_path, write_json_atomic, write_tsv_atomic

FIXED_POINT_COLUMNS = ["iteration", "point_id", "pc1", "pc2", "pc3", "q", "max_abs_eig", "n_unstable_modes", "kind"]
SUMMARY_COLUMNS = ["iteration", "n_fixed", "n_stable", "n_saddle", "n_unstable", "n_slow", "mean_speed",
                   "mean_tcr"]


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

    point_frames, summary_rows, pcs_for_plots, seconds_per_ckpt = [], [], [], []
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
                           float((np.diff(act, axis=1) ** 2).mean())))
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
        for it, fps, (speed, tcr) in zip(its, sets, speeds):
            point_frames.append(_points_frame(it, fps, pca))
            n = fps.counts()
            summary_rows.append({
                "iteration": int(it), "n_fixed": n["stable"] + n["saddle"] + n["unstable"],
                "n_stable": n["stable"], "n_saddle": n["saddle"], "n_unstable": n["unstable"], "n_slow": n["slow"],
                "mean_speed": speed, "mean_tcr": tcr,
            })
            seconds_per_ckpt.append(seconds)

    points = pd.concat(point_frames, ignore_index=True) if point_frames else pd.DataFrame(columns=FIXED_POINT_COLUMNS)
    summary = pd.DataFrame(summary_rows, columns=SUMMARY_COLUMNS)

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
    ap.add_argument("--settings", help="overrides of the analysis settings: a JSON object or a JSON file")
    ap.add_argument("--threads", type=int, help="torch threads (overrides settings.num_threads)")
    args = ap.parse_args(argv)

    from rnngeom.checkpoints import load_checkpoints

    text = args.settings or "{}"
    if not text.lstrip().startswith("{"):  # a path to a JSON file
        text = Path(text).read_text()
    overrides = json.loads(text)
    if args.threads:
        overrides["num_threads"] = args.threads
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
