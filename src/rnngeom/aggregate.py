"""Collect every run into tidy tables (data first; the figures read only these).

``python -m rnngeom.aggregate --thresholds '{"flipflop": 0.9}' --out-dir results/tables RUN_DIR ...``

Each RUN_DIR is ``results/runs/<run_id>`` with metrics.tsv, provenance.json and analysis/ (from
``rnngeom.analysis.run_analysis``). Written to --out-dir:

    runs.tsv          one row per run: identity, final/best held-out accuracy, learned, diverged, the
                      times below, the search phase and loss drop of its learning curve (LOSS_DROP_FIELDS,
                      rnngeom.analysis.loss_drop, against its chance_loss) and the GR fields of
                      analysis.json (GR_FIELDS), and how and where it was computed (code_path,
                      device, cpu, torch_version, numpy_version; rnngeom.provenance.RUN_COLUMNS), ...
    metrics.tsv       every evaluation of every run (learning curves)
    checkpoints.tsv   one row per (run, checkpoint): fixed-point counts by class, mean speed, mean TCR
                      penalty, ramping index, GR score into it
    fixed_points.tsv  one row per (run, checkpoint, fixed/slow point), PCA coordinates in the run's frame
    events.tsv        one row per GR event
    kappa_flow.tsv    rank-one runs only: one row per (run, checkpoint, κ grid point or fixed point) of the
                      latent flow (iteration, kappa, dkappa, slope, kind; see run_analysis.kappa_flow)

Every table starts with the identity columns ID_COLUMNS; a table no run contributes to holds only those.

Times in runs.tsv (computed here once; the claims and the figures read them and compute none of them again):

    n_iterations, eval_every  run length; evaluation interval (median gap in metrics.tsv; 1 if one row)
    time_to_learn             first evaluation that meets the task's learn criterion (held-out accuracy ≥
                              its accuracy_threshold, or held-out loss ≤ its loss_threshold × the run's
                              chance_loss where that is set; LearnCriterion); NaN if never or if the run
                              diverged
    censored                  True if the run did not learn (never reached the threshold, or diverged)
    time_to_learn_censored    time_to_learn, or n_iterations + eval_every for a censored run: later than any
                              run that learned (the worst rank); at least eval_every, so ratios are finite
    time_to_attractors        first checkpoint iteration with n_stable ≥ the task's EXPECTED_STABLE count;
                              never -> last checkpoint + one checkpoint interval (worst rank); at least one
                              interval; NaN for a task without a known count, a run without checkpoints or
                              one analysed at its final checkpoint only (analysis level final)
    attractors_censored       True if that count was never reached (NaN where time_to_attractors is NaN)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rnngeom.analysis.loss_drop import LearnCriterion, detect_in_metrics
from rnngeom.blocks import run_id_of
from rnngeom.constants import EXPECTED_STABLE, RUN_KEYS, TABLES
from rnngeom.io import json_arg, write_tsv_atomic
from rnngeom.provenance import run_columns

ID_COLUMNS = ["run_id", *RUN_KEYS]
# The loss drop of the learning curve (rnngeom.analysis.loss_drop, computed here from metrics.tsv) and the GR
# fields of the phase-space analysis (analysis.json).
LOSS_DROP_FIELDS = [
    "escaped",
    "abrupt",
    "search_fraction",
    "t_onset",
    "t_drop",
    "drop_width",
    "plateau_start",
    "plateau_length",
    "plateau_evals",
    "width_over_plateau",
    "drop_decades",
    "plateau_loss",
    "chance_loss",
]
GR_FIELDS = ["t_GR", "t_GR_max", "n_gr_events", "gr_noise_floor", "gr_threshold"]


def _with_ids(df: pd.DataFrame, ident: dict) -> pd.DataFrame:
    return df.assign(**ident)[ID_COLUMNS + [c for c in df.columns if c not in ident]]


def _read_tsv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path, sep="\t") if path.exists() else None


def eval_interval(iterations) -> float:
    """The evaluation interval of a run: median gap between its evaluated iterations (1 if fewer than two)."""
    gaps = np.diff(np.unique(np.asarray(iterations, dtype=float)))
    return float(np.median(gaps)) if len(gaps) else 1.0


def censored_time_to_learn(ttl: float, n_iterations: float, eval_every: float) -> float:
    """ttl (NaN = did not learn) or, censored, n_iterations + eval_every; never below one eval step."""
    value = n_iterations + eval_every if math.isnan(ttl) else ttl
    return max(float(value), float(eval_every))


def time_to_attractors(iterations, n_stable, target: int) -> tuple[float, bool]:
    """(first checkpoint iteration with n_stable ≥ target, censored?); never reached: last checkpoint + one
    checkpoint interval, censored. Never below one interval."""
    order = np.argsort(np.asarray(iterations, dtype=float), kind="stable")
    its = np.asarray(iterations, dtype=float)[order]
    counts = np.asarray(n_stable, dtype=float)[order]
    step = float(its[-1] - its[-2]) if len(its) > 1 else 1.0
    hit = its[counts >= target]
    value, censored = (float(hit[0]), False) if len(hit) else (float(its[-1] + step), True)
    return max(value, step), censored


def run_summary(
    metrics: pd.DataFrame,
    n_iterations: int,
    criterion: LearnCriterion,
    diverged: bool,
    chance_loss: float | None = None,
) -> dict:
    """A run's learning-curve summary: length, evaluation interval, final/best held-out values, and
    time-to-learn by the task's ``criterion`` with its censored form (the module docstring). Shared by
    runs.tsv and the regime scan."""
    # A diverged run "did not learn", whatever its accuracy was before it blew up.
    ttl = None if diverged else criterion.time_to_learn(metrics, chance_loss)
    ttl = math.nan if ttl is None else float(ttl)
    eval_every = eval_interval(metrics["iteration"])
    last = metrics.iloc[-1]
    return {
        "n_iterations": n_iterations,
        "eval_every": eval_every,
        "final_test_loss": float(last["test_loss"]),
        "final_test_accuracy": float(last["test_accuracy"]),
        "best_test_accuracy": float(metrics["test_accuracy"].max()),
        "accuracy_threshold": criterion.accuracy,
        "loss_threshold": criterion.loss_fraction,
        "time_to_learn": ttl,
        "time_to_learn_censored": censored_time_to_learn(ttl, n_iterations, eval_every),
        "censored": math.isnan(ttl),
        "learned": not math.isnan(ttl),
        "diverged": diverged,
    }


def collect_run(
    run_dir: Path, thresholds: dict, loss_drop: dict | None = None, run_id: str | None = None
) -> dict[str, pd.DataFrame | dict]:
    """The rows this run contributes to each table; ``loss_drop``: the detector's settings (the config's
    ``loss_drop:`` block), its reference the run's chance_loss (provenance.json); ``run_id``: default from
    the folder (``.../runs/<run_id>``)."""
    prov = json.loads((run_dir / "provenance.json").read_text())
    s = prov["settings"]
    ident = {"run_id": run_id or run_id_of(run_dir), **{k: s[k] for k in ID_COLUMNS[1:]}}
    metrics = pd.read_csv(run_dir / "metrics.tsv", sep="\t")
    diverged = bool(prov.get("diverged", False)) or bool(metrics["diverged"].any())
    if s["task"] not in thresholds:
        raise ValueError(
            f"no learn criterion for task {s['task']!r} (run {run_dir}); given: {sorted(thresholds)}"
        )
    chance = prov.get("chance_loss")
    criterion = LearnCriterion.of(thresholds[s["task"]])
    try:
        summary = run_summary(metrics, s["training"]["n_iterations"], criterion, diverged, chance)
    except ValueError as err:
        raise ValueError(f"run {run_dir}: {err}") from None
    row = {
        **ident,
        "n_hidden": s["model"]["n_hidden"],
        **summary,
        "time_to_attractors": math.nan,
        "attractors_censored": math.nan,
        "wall_seconds": prov.get("wall_seconds"),
        **run_columns(prov),
    }
    drop = detect_in_metrics(metrics, loss_drop, reference_loss=chance).to_dict()
    row.update({k: drop[k] for k in LOSS_DROP_FIELDS if k in drop}, chance_loss=chance)
    out: dict = {"metrics": _with_ids(metrics, ident)}
    analysis = run_dir / "analysis"
    result_file = analysis / "analysis.json"
    if result_file.exists():
        result = json.loads(result_file.read_text())
        row.update({k: result.get(k) for k in GR_FIELDS})
        row["n_stable_final"] = (result.get("final_counts") or {}).get("n_stable")
        summary = _read_tsv(analysis / "checkpoint_summary.tsv")
        scores = _read_tsv(analysis / "gr_scores.tsv")
        if summary is not None:
            if scores is not None and not scores.empty:
                into = (
                    scores.drop(columns=["iteration_prev"])
                    .add_prefix("gr_")
                    .rename(columns={"gr_iteration": "iteration"})
                )
                # columns the summary already has (e.g. gr_score, gr_null_q) are not taken twice
                into = into[["iteration"] + [c for c in into.columns if c not in summary.columns]]
                summary = summary.merge(into, on="iteration", how="left")
            out["checkpoints"] = _with_ids(summary, ident)
            target = EXPECTED_STABLE.get(s["task"])
            # a run analysed at its final checkpoint only (analysis: final) has no count before: NaN
            known = "n_stable" in summary.columns and len(summary) and summary["n_stable"].notna().all()
            if target is not None and known:
                row["time_to_attractors"], row["attractors_censored"] = time_to_attractors(
                    summary["iteration"], summary["n_stable"], target
                )
        for name in (
            "fixed_points",
            "events",
            "kappa_flow",
        ):  # kappa_flow: absent or header-only unless rank1
            df = _read_tsv(analysis / f"{name}.tsv")
            if df is not None:
                out[name] = _with_ids(df, ident)
    out["runs"] = row
    return out


def aggregate(
    run_dirs: list[str | Path], thresholds: dict, loss_drop: dict | None = None, run_ids: list | None = None
) -> dict[str, pd.DataFrame]:
    """Every table (constants.TABLES) over the runs in ``run_dirs`` (their ids: ``run_ids``, default from
    the folders)."""
    parts: dict[str, list] = {name: [] for name in TABLES}
    for d, run_id in zip(run_dirs, run_ids or [None] * len(run_dirs)):
        for name, value in collect_run(Path(d), thresholds, loss_drop, run_id).items():
            parts[name].append(value)
    tables = {"runs": pd.DataFrame(parts["runs"])}
    for name in TABLES[1:]:
        frames = [f for f in parts[name] if not f.empty]
        # no rows anywhere: keep the columns of the runs' (header-only) tables, so readers find them
        columns = list(parts[name][0].columns) if parts[name] else ID_COLUMNS
        tables[name] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    for name, df in tables.items():
        keys = [k for k in ("run_id", "iteration", "point_id") if k in df.columns]
        tables[name] = df.sort_values(keys, kind="stable").reset_index(drop=True) if len(df) else df
    return tables


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Aggregate per-run outputs into tidy tables")
    ap.add_argument(
        "--thresholds",
        required=True,
        help="JSON (or @file) {task: learn criterion {accuracy, loss_fraction} (or an accuracy threshold)}",
    )
    ap.add_argument(
        "--loss-drop",
        default="{}",
        help="JSON (or @file): the loss-drop detector's settings (config loss_drop)",
    )
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("run_dirs", nargs="+", help="results/runs/<run_id> folders")
    a = ap.parse_args(argv)
    missing = [
        d
        for d in a.run_dirs
        if not (Path(d) / "metrics.tsv").exists() or not (Path(d) / "provenance.json").exists()
    ]
    if missing:
        ap.error(f"run folders without metrics.tsv/provenance.json: {missing[:5]}")
    try:
        tables = aggregate(
            a.run_dirs, json_arg(a.thresholds, "--thresholds"), json_arg(a.loss_drop, "--loss-drop")
        )
    except ValueError as err:
        ap.error(str(err))
    for name, df in tables.items():
        write_tsv_atomic(Path(a.out_dir) / f"{name}.tsv", df)
    runs = tables["runs"]
    print(f"aggregated {len(runs)} runs ({int(runs['learned'].sum())} learned)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
