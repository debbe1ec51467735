"""What every figure shares: one seaborn style, the command line, experiment filtering, PNG + PDF output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display needed (clusters, CI)
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from rnngeom.io import atomic_path  # noqa: E402

ARCH_LABELS = {"plrnn": "PLRNN", "leaky": "leaky firing-rate", "rank1": "rank-one", "lstm": "LSTM"}
TASK_LABELS = {"flipflop": "3-bit flip-flop", "delayed_addition": "delayed addition",
               "evidence_accumulation": "evidence accumulation"}  # fmt: skip


def set_style() -> None:
    sns.set_theme(context="paper", style="ticks", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 150, "savefig.bbox": "tight", "pdf.fonttype": 42})


def parse_args(description: str, argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--runs", required=True, help="results/tables/runs.tsv")
    ap.add_argument("--metrics", required=True, help="results/tables/metrics.tsv")
    ap.add_argument("--tables", default="results/tables", help="folder of the other tidy tables")
    ap.add_argument("--runs-dir", default="results/runs", help="per-run folders (phase portraits read from them)")
    ap.add_argument("--grid", default=None, help="JSON grid of the experiment to draw (filters the runs)")
    ap.add_argument("--out", nargs="+", required=True, help="output files (.png and/or .pdf)")
    return ap.parse_args(argv)


def select(df: pd.DataFrame, grid_json: str | None) -> pd.DataFrame:
    """Rows of ``df`` inside any of the experiment grids [{column: allowed values}, ...] (numbers as numbers)."""
    if not grid_json:
        return df
    grids = json.loads(grid_json)
    keep = pd.Series(False, index=df.index)
    for grid in [grids] if isinstance(grids, dict) else grids:
        inside = pd.Series(True, index=df.index)
        for col, allowed in grid.items():
            if pd.api.types.is_numeric_dtype(df[col]):
                inside &= df[col].astype(float).isin([float(v) for v in allowed])
            else:
                inside &= df[col].astype(str).isin([str(v) for v in allowed])
        keep |= inside
    return df[keep]


def load(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = select(pd.read_csv(args.runs, sep="\t"), args.grid)
    if runs.empty:
        raise SystemExit(f"no runs of this figure's experiment in {args.runs} (grid {args.grid})")
    metrics = pd.read_csv(args.metrics, sep="\t")
    return runs, metrics[metrics["run_id"].isin(runs["run_id"])]


def load_table(args: argparse.Namespace, name: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Another tidy table (checkpoints, fixed_points, events) restricted to the figure's runs."""
    df = pd.read_csv(Path(args.tables) / f"{name}.tsv", sep="\t")
    return df[df["run_id"].isin(runs["run_id"])] if "run_id" in df.columns else df


def run_label(row) -> str:
    return (f"{TASK_LABELS.get(row['task'], row['task'])} · {ARCH_LABELS.get(row['arch'], row['arch'])} · "
            f"λ={row['lambda_tcr']:g} · g={row['gain']:g} · seed {row['seed']}")  # fmt: skip


KIND_COLORS = {"stable": "#1b7837", "saddle": "#e08214", "unstable": "#b2182b", "slow": "#7f7f7f"}
KIND_MARKERS = {"stable": "o", "saddle": "X", "unstable": "^", "slow": "."}


def save(fig, outputs: list[str]) -> None:
    for out in outputs:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=Path(out).suffix.lstrip("."))
    plt.close(fig)
