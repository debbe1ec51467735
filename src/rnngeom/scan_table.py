"""The regime scan's table: one row per run, from the learning curves of the cells (rnngeom.scan).

    python -m rnngeom.scan_table --main-config CONFIG --out results/scan/scan.tsv cells/*.tsv

Each run's row holds what the reproduction's own functions compute from its held-out learning curve: the
times of ``rnngeom.aggregate.run_summary`` (time-to-learn and its censored form, exactly as in runs.tsv) and
the search phase and drop of ``rnngeom.analysis.loss_drop.detect_in_metrics`` with the main config's
``loss_drop`` settings, against the run's chance loss. Kept apart from rnngeom.scan so that changing the
detector or a threshold re-makes this table, never the training of a cell.
"""

from __future__ import annotations

import argparse
import math
import sys

import pandas as pd

from rnngeom import config as rnngeom_config
from rnngeom.scan import (
    CURVE_ID_COLUMNS,
    CURVE_METRICS,
    CURVE_RUN_COLUMNS,
    EFFECTIVE_COLUMNS,
    ScanError,
    load_main_config,
)

LOSS_DROP_COLUMNS = (
    "escaped",
    "abrupt",
    "search_fraction",
    "plateau_length",
    "plateau_evals",
    "t_onset",
    "t_drop",
    "drop_width",
    "width_over_plateau",
    "drop_decades",
    "plateau_loss",
)
COLUMNS = [
    "family",
    "cell",
    "task",
    "arch",
    "learning_rule",
    *EFFECTIVE_COLUMNS,
    "gain",
    "lambda_tcr",
    "seed",
    "n_iterations",
    "eval_every",
    "learned",
    "time_to_learn",
    "time_to_learn_censored",
    "censored",
    "final_accuracy",
    "best_accuracy",
    "final_loss",
    "diverged",
    *LOSS_DROP_COLUMNS,
    "wall_seconds",
]


def table_config(config: dict) -> dict:
    """What the scan table reads of the main config: the accuracy thresholds (tasks, training) and the
    loss-drop detector's settings."""
    return {k: config[k] for k in ("tasks", "training", "loss_drop") if k in config}


def run_rows(curves: pd.DataFrame, thresholds: dict, loss_drop: dict | None = None) -> pd.DataFrame:
    """One row per run (COLUMNS, then the varied columns) from cell curves: the times of
    ``rnngeom.aggregate.run_summary`` and the drop of ``detect_in_metrics`` with the ``loss_drop`` settings
    (the main config's ``loss_drop:`` block), against each run's chance loss, as runs.tsv has them."""
    from rnngeom.aggregate import run_summary
    from rnngeom.analysis.loss_drop import LearnCriterion, detect_in_metrics

    metric_set = set(CURVE_METRICS)
    rows = []
    for (_, _), run in curves.groupby(["cell", "seed"], sort=False):
        first = run.iloc[0]
        if first["task"] not in thresholds:
            raise ScanError(f"no learn criterion for task {first['task']!r}; given: {sorted(thresholds)}")
        metrics = run[CURVE_METRICS].sort_values("iteration", kind="stable")
        diverged = bool(first["run_diverged"]) or bool(metrics["diverged"].astype(bool).any())
        criterion = LearnCriterion.of(thresholds[first["task"]])
        chance = float(first["chance_loss"])
        summary = run_summary(metrics, int(first["n_iterations"]), criterion, diverged, chance)
        drop = detect_in_metrics(metrics, loss_drop, reference_loss=chance)
        fields = drop.to_dict()
        rows.append(
            {
                **{c: first[c] for c in run.columns if c not in metric_set and c != "run_diverged"},
                **{k: summary[k] for k in ("eval_every", "learned", "time_to_learn")},
                **{k: summary[k] for k in ("time_to_learn_censored", "censored", "diverged")},
                "final_accuracy": summary["final_test_accuracy"],
                "best_accuracy": summary["best_test_accuracy"],
                "final_loss": summary["final_test_loss"],
                **{k: fields[k] for k in LOSS_DROP_COLUMNS},
            }
        )
    return order_columns(pd.DataFrame(rows))


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    """COLUMNS first, then the extra varied columns (vary paths outside EFFECTIVE_COLUMNS), sorted."""
    for column in COLUMNS:
        if column not in df.columns:
            df[column] = math.nan
    return df[COLUMNS + sorted(c for c in df.columns if c not in COLUMNS)]


def concat_cells(paths, thresholds: dict, loss_drop: dict | None = None) -> pd.DataFrame:
    """The scan table: every cell's runs, one row each, sorted by cell and seed."""
    frames = []
    for p in paths:
        try:
            frames.append(pd.read_csv(p, sep="\t"))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ScanError(f"cannot read the cell curves {p}: {err}") from None
    if not frames:
        raise ScanError("no cell tables given")
    needed = set(CURVE_ID_COLUMNS + CURVE_RUN_COLUMNS + CURVE_METRICS)
    missing = [str(p) for p, f in zip(paths, frames) if not needed <= set(f.columns)]
    if missing:
        raise ScanError(f"not a scan cell table (columns missing): {missing[:3]}")
    table = pd.concat([run_rows(f, thresholds, loss_drop) for f in frames], ignore_index=True)
    return order_columns(table).sort_values(["cell", "seed"], kind="stable").reset_index(drop=True)


def main(argv=None) -> int:
    from rnngeom.io import write_tsv_atomic

    ap = argparse.ArgumentParser(prog="python -m rnngeom.scan_table", description=__doc__.splitlines()[0])
    ap.add_argument("--main-config", required=True, help="main config (accuracy thresholds, loss_drop)")
    ap.add_argument("--out", required=True)
    ap.add_argument("cells", nargs="+", help="cell curves (results/scan/cells/<cell>.tsv)")
    a = ap.parse_args(argv)
    try:
        config = load_main_config(a.main_config)
        df = concat_cells(a.cells, rnngeom_config.learn_criteria(config), config.get("loss_drop"))
    except (ScanError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_tsv_atomic(a.out, df)
    print(f"wrote {a.out}: {len(df)} runs in {df['cell'].nunique()} cells", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
