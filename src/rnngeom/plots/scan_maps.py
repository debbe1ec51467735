"""Figure: the regime map of one scan family (results/scan/scan.tsv, rnngeom.scan; docs/scan.md).

One row of heatmaps per task x architecture (and, in a family that varies alpha, the learning rate or the
task timing, per lambda_TCR); rows of each heatmap = gain, columns = lambda_TCR (or the varied value).
Numbers are written in the cells:
  (a) median censored time-to-learn (colour, log scale; runs that never learned count at the training
      length + one evaluation, so a median at that value means "most did not learn") and, below it, the
      fraction of seeds that learned;
  (b) TCR's effect: log2(median censored time-to-learn at lambda / at lambda = 0, same gain and value);
      blue = TCR speeds learning up, red = slows it down (diverging, centred at 0);
  (c) plateau-then-drop: fraction of runs the loss-drop detector flags abrupt (colour) and, below it, the
      median plateau_fraction (plateau before the drop, as a fraction of the run).

CLI: python -m rnngeom.plots.scan_maps --table scan.tsv --family NAME [--vary COLUMN] --out a.png a.pdf
"""

from __future__ import annotations

import argparse
import sys

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd

from rnngeom.io import as_bool
from rnngeom.plots.style import ARCH_LABELS, TASK_LABELS, plt, save, set_style


def cell_stats(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per cell (``keys``): median censored time-to-learn, fraction learned, fraction abrupt, median
    plateau fraction, number of runs."""
    runs = runs.assign(learned=as_bool(runs["learned"]).eq(True), abrupt=as_bool(runs["abrupt"]).eq(True))
    return (
        runs.groupby(keys, dropna=False)
        .agg(
            ttl=("time_to_learn_censored", "median"),
            learned=("learned", "mean"),
            abrupt=("abrupt", "mean"),
            plateau=("plateau_fraction", "median"),
            n=("seed", "size"),
        )
        .reset_index()
    )


def tcr_effect(stats: pd.DataFrame, row: str, col: str) -> pd.DataFrame:
    """stats plus ``log2_ratio``: log2 of ttl over ttl at lambda = 0 of the same other keys."""
    others = [
        k for k in stats.columns if k in ("task", "arch", "learning_rule", row, col) and k != "lambda_tcr"
    ]
    base = stats[stats["lambda_tcr"] == 0.0][others + ["ttl"]].rename(columns={"ttl": "ttl0"})
    out = stats.merge(base, on=others, how="left")
    return out.assign(log2_ratio=np.log2(out["ttl"] / out["ttl0"]))


def heatmap(ax, stats: pd.DataFrame, row: str, col: str, value: str, text, cmap, norm, label: str):
    """One heatmap of ``value`` over row x col with its colour bar; ``text(cell)`` is written in each cell."""
    cells = stats.set_index([row, col]).sort_index()
    grid = stats.pivot(index=row, columns=col, values=value).sort_index().sort_index(axis=1)
    image = ax.imshow(grid.to_numpy(dtype=float), cmap=cmap, norm=norm, aspect="auto", origin="lower")
    for i, j in np.ndindex(grid.shape):
        v = grid.iat[i, j]
        if pd.isna(v):
            ax.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="0.4")
            continue
        rgba = image.cmap(image.norm(v))
        dark = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
        cell = cells.loc[(grid.index[i], grid.columns[j])]
        ax.text(j, i, text(cell), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(grid.shape[1]), [f"{c:g}" for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{r:g}" for r in grid.index])
    ax.set_xlabel("λ_TCR" if col == "lambda_tcr" else col, fontsize=8)
    ax.set_ylabel("gain", fontsize=8)
    ax.tick_params(labelsize=7)
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.9, pad=0.02)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(which="both", labelsize=6)


def draw(runs: pd.DataFrame, family: str, vary: str = ""):
    """The family's figure (see the module docstring)."""
    runs = runs[runs["family"] == family]
    if runs.empty:
        raise SystemExit(f"no runs of scan family {family!r} in the table")
    if vary and vary not in runs.columns:
        raise SystemExit(f"--vary {vary!r} is not a column of the scan table")
    col = vary or "lambda_tcr"
    facet = ["task", "arch", "learning_rule"] + (["lambda_tcr"] if vary else [])
    keys = sorted(set(facet) | {"gain", col, "lambda_tcr"}, key=(facet + ["gain", col]).index)
    stats = tcr_effect(cell_stats(runs, keys), "gain", col)
    groups = list(stats.groupby(facet, sort=True))
    n_cols = max(stats.groupby(facet)[col].nunique().max(), 2)
    fig, axes = plt.subplots(
        len(groups),
        3,
        figsize=(3 * (1.6 + 0.7 * n_cols), 0.8 + 2.6 * len(groups)),
        squeeze=False,
        layout="constrained",
    )
    # one colour scale for the whole family; its top is the censored value (n_iterations + one evaluation)
    ttl_min = max(float(stats["ttl"].min()), 1.0)
    ttl_norm = mcolors.LogNorm(vmin=ttl_min, vmax=max(float(stats["ttl"].max()), 2.0 * ttl_min))
    ratio_max = max(
        float(np.nanmax(np.abs(stats["log2_ratio"]))) if stats["log2_ratio"].notna().any() else 0, 0.5
    )
    ratio_norm = mcolors.TwoSlopeNorm(vcenter=0.0, vmin=-ratio_max, vmax=ratio_max)
    unit_norm = mcolors.Normalize(0.0, 1.0)
    for (key, group), ax_row in zip(groups, axes):
        label = dict(zip(facet, key if isinstance(key, tuple) else (key,)))
        task, arch = (
            TASK_LABELS.get(label["task"], label["task"]),
            ARCH_LABELS.get(label["arch"], label["arch"]),
        )
        title = f"{task} · {arch}"
        if vary:
            title += f" · λ={label['lambda_tcr']:g}"
        heatmap(
            ax_row[0],
            group,
            "gain",
            col,
            "ttl",
            lambda c: f"{c['ttl']:.0f}\n{round(c['learned'] * c['n']):d}/{c['n']:d} learned",
            "viridis_r",
            ttl_norm,
            "median censored time to learn",
        )
        ax_row[0].set_title(f"{title}\n(a) time to learn, seeds learned", fontsize=8)
        if vary and label["lambda_tcr"] == 0.0:
            ax_row[1].axis("off")
            ax_row[1].text(0.5, 0.5, "λ = 0: the reference\nof (b)", ha="center", va="center", fontsize=8)
        else:
            heatmap(
                ax_row[1],
                group,
                "gain",
                col,
                "log2_ratio",
                lambda c: f"{c['log2_ratio']:+.2f}",
                "RdBu_r",
                ratio_norm,
                "log2 ratio (blue: TCR faster)",
            )
            ax_row[1].set_title(f"{title}\n(b) TCR: log2(time at λ / at λ = 0)", fontsize=8)
        heatmap(
            ax_row[2],
            group,
            "gain",
            col,
            "abrupt",
            lambda c: (
                f"{c['abrupt']:.2f}\n"
                + (f"plat. {c['plateau']:.2f}" if pd.notna(c["plateau"]) else "no drop")
            ),
            "magma",
            unit_norm,
            "fraction abrupt",
        )
        ax_row[2].set_title(f"{title}\n(c) frac. abrupt, median plateau frac.", fontsize=8)
    n_seeds = int(stats["n"].max())
    fig.suptitle(f"scan family {family}: {n_seeds} exploration seeds per cell", fontsize=10)
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="results/scan/scan.tsv")
    ap.add_argument("--family", required=True, help="a family of the scan file")
    ap.add_argument("--vary", default="", help="the column the family varies ('' = gain x lambda only)")
    ap.add_argument("--out", nargs="+", required=True, help="output files (.png and/or .pdf)")
    a = ap.parse_args(argv)
    set_style()
    save(draw(pd.read_csv(a.table, sep="\t"), a.family, a.vary), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
