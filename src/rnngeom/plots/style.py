"""What every figure shares: one seaborn style, the command line, run selection, PNG + PDF output."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display needed (clusters, CI)
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from rnngeom.io import as_bool, atomic_path, json_arg  # noqa: E402

ARCH_LABELS = {"plrnn": "PLRNN", "leaky": "leaky firing-rate", "rank1": "rank-one", "lstm": "LSTM"}
# networks trained elsewhere (rnngeom.external): torch's modules and a bare map F(h, x)
ARCH_LABELS.update({"rnn": "RNN", "gru": "GRU", "callable": "map F(h, x)"})
TASK_LABELS = {
    "flipflop": "3-bit flip-flop",
    "delayed_addition": "delayed addition",
    "evidence_accumulation": "evidence accumulation",
}
RULE_LABELS = {
    "bptt": "BPTT",
    "rflo": "RFLO",
    "freeze_in": "freeze-in",
    "freeze_in_noise": "freeze-in + weight noise",
    "freeze_in_control": "freeze-in + λ(t) control",
}


def set_style() -> None:
    sns.set_theme(context="paper", style="ticks", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 150, "savefig.bbox": "tight", "pdf.fonttype": 42})


def parse_args(description: str, argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--runs", required=True, help="results/tables/runs.tsv")
    ap.add_argument("--metrics", required=True, help="results/tables/metrics.tsv")
    ap.add_argument("--tables", default="results/tables", help="folder of the other tidy tables")
    ap.add_argument(
        "--runs-dir", default="results/runs", help="per-run folders (phase portraits read from them)"
    )
    ap.add_argument("--run-ids", required=True, help="JSON list of the run_ids to draw, or @file")
    ap.add_argument("--out", nargs="+", required=True, help="output files (.png and/or .pdf)")
    return ap.parse_args(argv)


def run_ids(args: argparse.Namespace) -> list[str]:
    """The figure's run list from ``--run-ids`` (JSON list of run_id strings, or @file)."""
    try:
        ids = json_arg(args.run_ids, "--run-ids")
    except ValueError as err:
        raise SystemExit(str(err)) from None
    if not isinstance(ids, list) or not all(isinstance(r, str) for r in ids):
        raise SystemExit(f"--run-ids: expected a JSON list of run_id strings, got {str(ids)[:80]}")
    return ids


def load(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs of the figure (exact run_id membership, never a grid of key values) and their metrics."""
    ids = run_ids(args)
    runs = pd.read_csv(args.runs, sep="\t")
    runs = runs[runs["run_id"].isin(set(ids))]
    if runs.empty:
        raise SystemExit(f"no runs of this figure's experiment in {args.runs} ({len(ids)} run ids asked for)")
    metrics = pd.read_csv(args.metrics, sep="\t")
    return runs, metrics[metrics["run_id"].isin(runs["run_id"])]


def load_table(args: argparse.Namespace, name: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Another tidy table (checkpoints, fixed_points, events, kappa_flow) restricted to the figure's runs."""
    path = Path(args.tables) / f"{name}.tsv"
    if not path.exists():
        raise SystemExit(f"table {path} is missing (run the aggregate step: python -m rnngeom.aggregate)")
    df = pd.read_csv(path, sep="\t")
    return df[df["run_id"].isin(runs["run_id"])] if "run_id" in df.columns else df


def with_censored_ttl(runs: pd.DataFrame) -> pd.DataFrame:
    """runs plus ``censored`` (bool) and ``ttl``: runs.tsv's time_to_learn_censored, as the claims use it
    (unlearned or diverged runs at the run length + one evaluation step, drawn as open markers at the top)."""
    censored = as_bool(runs["censored"]).eq(True)
    return runs.assign(censored=censored, ttl=runs["time_to_learn_censored"].astype(float))


def rule_label(rule: str) -> str:
    return RULE_LABELS.get(rule, str(rule).replace("_", " "))


def conditions(df: pd.DataFrame, keys=("task", "arch", "learning_rule", "gain")) -> pd.Series:
    """A readable label per row naming its condition ("3-bit flip-flop · LSTM · BPTT · g=1"), for facets."""
    parts = []
    for key in keys:
        col = df[key]
        if key == "task":
            parts.append(col.map(lambda v: TASK_LABELS.get(v, v)))
        elif key == "arch":
            parts.append(col.map(lambda v: ARCH_LABELS.get(v, v)))
        elif key == "learning_rule":
            parts.append(col.map(rule_label))
        elif key == "lambda_tcr":
            parts.append(col.map(lambda v: f"λ={float(v):g}"))
        elif key == "gain":
            parts.append(col.map(lambda v: f"g={float(v):g}"))
        else:
            parts.append(col.astype(str).radd(f"{key}="))
    out = parts[0].astype(str)
    for part in parts[1:]:
        out = out + " · " + part.astype(str)
    return out


def lam_str(value) -> str:
    return f"{float(value):g}"


def lam_palette(lams) -> dict:
    """λ_TCR value (as lam_str) -> colour: grey for λ = 0 (no TCR), a sequential palette for λ > 0."""
    values = sorted({float(v) for v in lams})
    positive = [v for v in values if v > 0]
    colors = sns.color_palette("flare", max(len(positive), 1))
    palette = {lam_str(v): colors[i] for i, v in enumerate(positive)}
    if 0.0 in values:
        palette[lam_str(0.0)] = (0.35, 0.35, 0.35)
    return palette


def panel_grid(n: int, ncols: int = 4, width: float = 3.6, height: float = 3.0, **kw):
    """A figure with n panels in rows of at most ncols (surplus axes hidden; constrained layout, so a suptitle
    and a ``fig.legend(loc="outside lower center")`` get room); returns (fig, list of axes)."""
    cols = max(1, min(ncols, n))
    rows = max(1, math.ceil(n / cols))
    kw.setdefault("layout", "constrained")
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kw)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def message(ax, text: str) -> None:
    """An explanatory note in place of a panel's data (e.g. a column the tables do not have yet)."""
    ax.text(
        0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8, wrap=True, color="0.3"
    )


FINAL_ONLY_NOTE = "fixed points at the final checkpoint only\n(experiment analysis: final): no time course"


def fixed_point_time_course(checkpoints: pd.DataFrame) -> pd.Series:
    """Per run_id: True if its fixed points were found at every one of its (two or more) checkpoints
    (analysis level full); False for a run analysed at its final checkpoint only (level final: the counts
    before it are empty) or one with a single checkpoint."""
    if checkpoints.empty or "n_stable" not in checkpoints.columns:
        return pd.Series(dtype=bool)
    known = pd.to_numeric(checkpoints["n_stable"], errors="coerce").notna().groupby(checkpoints["run_id"])
    return known.all() & (known.size() > 1)


def seed_lines(
    ax, df: pd.DataFrame, x: str, y: str, color, label: str | None = None, median: bool = True
) -> None:
    """One thin line per run (seed) and, if several, the median over them at each x (thick)."""
    for _, d in df.groupby("run_id", sort=True):
        d = d.sort_values(x)
        # a run with one value (e.g. fixed points at the final checkpoint only): a dot, not an invisible line
        ax.plot(d[x], d[y], color=color, lw=0.7, alpha=0.45, marker="o" if len(d) == 1 else None, ms=3)
    if median and not df.empty:
        med = df.groupby(x, sort=True)[y].median()
        ax.plot(med.index, med.values, color=color, lw=2.0, label=label)
    elif label is not None:
        ax.plot([], [], color=color, lw=2.0, label=label)


def censor_handles() -> list:
    """Legend entries for one-seed markers: filled = learned, open = did not learn (censored)."""
    from matplotlib.lines import Line2D

    kw = {"ls": "none", "marker": "o", "markersize": 5, "markeredgecolor": "0.3"}
    return [
        Line2D([], [], markerfacecolor="0.3", label="one seed (learned)", **kw),
        Line2D([], [], markerfacecolor="none", label="did not learn (run length + one eval step)", **kw),
        Line2D([], [], color="0.5", ls=":", lw=0.8, label="training length"),
    ]


def run_label(row) -> str:
    """task · architecture · λ · g · seed; a network trained elsewhere (learning_rule "external",
    rnngeom.external) has no λ, gain or seed of ours and is named by its run id instead."""
    parts = [TASK_LABELS.get(row["task"], row["task"]), ARCH_LABELS.get(row["arch"], row["arch"])]
    if row.get("learning_rule") == "external":
        return " · ".join([str(row["run_id"]), *parts])
    return " · ".join([*parts, f"λ={row['lambda_tcr']:g}", f"g={row['gain']:g}", f"seed {row['seed']}"])


KIND_COLORS = {"stable": "#1b7837", "saddle": "#e08214", "unstable": "#b2182b", "slow": "#7f7f7f"}
KIND_MARKERS = {"stable": "o", "saddle": "X", "unstable": "^", "slow": "."}


def save(fig, outputs: list[str]) -> None:
    for out in outputs:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=Path(out).suffix.lstrip("."))
    plt.close(fig)
