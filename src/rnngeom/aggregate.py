"""Collect every run into tidy tables.

``python -m rnngeom.aggregate --thresholds '{"flipflop": 0.95}' --out-runs runs.tsv --out-metrics metrics.tsv
results/runs/<run_id>/metrics.tsv ...``

runs.tsv: one row per run (identity columns, final/best held-out accuracy, time_to_learn, learned, diverged).
metrics.tsv: every evaluation of every run (the learning curves), identity columns first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rnngeom.io import write_tsv_atomic

ID_COLUMNS = ["run_id", "task", "arch", "learning_rule", "lambda_tcr", "gain", "seed"]


def time_to_learn(iterations, accuracy, threshold: float) -> float:
    """First evaluated iteration whose held-out accuracy reaches ``threshold``; NaN if never."""
    acc = np.asarray(accuracy, dtype=float)
    hit = np.flatnonzero(np.nan_to_num(acc, nan=-1.0) >= threshold)
    return float(np.asarray(iterations)[hit[0]]) if hit.size else float("nan")


def run_id_of(run_dir: Path, runs_root: str = "runs") -> str:
    parts = run_dir.parts
    return "/".join(parts[parts.index(runs_root) + 1 :]) if runs_root in parts else str(run_dir)


def summarize_run(run_dir: Path, thresholds: dict) -> tuple[dict, pd.DataFrame]:
    prov = json.loads((run_dir / "provenance.json").read_text())
    s = prov["settings"]
    metrics = pd.read_csv(run_dir / "metrics.tsv", sep="\t")
    ident = {"run_id": run_id_of(run_dir), **{k: s[k] for k in ID_COLUMNS[1:]}}
    diverged = bool(prov.get("diverged", False)) or bool(metrics["diverged"].any())
    threshold = float(thresholds.get(s["task"], 0.95))
    ttl = float("nan") if diverged else time_to_learn(metrics["iteration"], metrics["test_accuracy"], threshold)
    last = metrics.iloc[-1]
    row = {
        **ident,
        "n_hidden": s["model"]["n_hidden"],
        "n_iterations": s["training"]["n_iterations"],
        "final_test_loss": float(last["test_loss"]),
        "final_test_accuracy": float(last["test_accuracy"]),
        "best_test_accuracy": float(metrics["test_accuracy"].max()),
        "accuracy_threshold": threshold,
        "time_to_learn": ttl,
        "learned": bool(np.isfinite(ttl)),
        "diverged": diverged,
        "wall_seconds": prov.get("wall_seconds"),
    }
    curve = metrics.assign(**ident)[ID_COLUMNS + [c for c in metrics.columns]]
    return row, curve


def aggregate(metric_files: list[str], thresholds: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, curves = [], []
    for f in metric_files:
        row, curve = summarize_run(Path(f).parent, thresholds)
        rows.append(row)
        curves.append(curve)
    runs = pd.DataFrame(rows).sort_values("run_id", kind="stable").reset_index(drop=True)
    metrics = pd.concat(curves, ignore_index=True).sort_values(["run_id", "iteration"], kind="stable")
    return runs, metrics.reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Aggregate per-run outputs into results/tables/*.tsv")
    ap.add_argument("--thresholds", default="{}", help="JSON {task: accuracy threshold}")
    ap.add_argument("--out-runs", required=True)
    ap.add_argument("--out-metrics", required=True)
    ap.add_argument("metric_files", nargs="+", help="results/runs/<run_id>/metrics.tsv files")
    a = ap.parse_args(argv)
    missing = [f for f in a.metric_files if not Path(f).exists() or not (Path(f).parent / "provenance.json").exists()]
    if missing:
        ap.error(f"missing run outputs (metrics.tsv/provenance.json): {missing[:5]}")
    runs, metrics = aggregate(a.metric_files, json.loads(a.thresholds))
    write_tsv_atomic(a.out_runs, runs)
    write_tsv_atomic(a.out_metrics, metrics)
    print(f"aggregated {len(runs)} runs ({int(runs['learned'].sum())} learned)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
