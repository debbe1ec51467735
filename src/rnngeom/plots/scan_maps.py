"""Figure: the regime map of one scan family (results/scan/scan.tsv, rnngeom.scan; docs/scan.md).

One row of heatmaps per task x architecture x the family's other varied values (and, in a family that
varies a config value, per lambda_TCR); rows of each heatmap = gain, columns = the first varied value (or
lambda_TCR in a gain x lambda family). Numbers are written in the cells:
  (a) time to learn: median censored time-to-learn (colour, log scale; runs that never learned count at
      the training length + one evaluation, so a median at that value means "most did not learn") and,
      below it, how many seeds learned;
  (b) the search phase: fraction of seeds that escaped their plateau (colour) and, below it, the median
      plateau length in iterations (runs that never escaped count their whole run: a lower bound);
  (c) abrupt: fraction of the seeds that escaped whose escape was abrupt (colour) and, below it, the
      median escape width over plateau length of those;
  (d) TCR's effect: log2(median censored time-to-learn at lambda / at lambda = 0, same gain and values);
      blue = TCR speeds learning up, red = slows it down (only where the family has lambda > 0).

CLI: python -m rnngeom.plots.scan_maps --table scan.tsv --family NAME [--vary COL[,COL...]] --out a.png a.pdf
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
    """Per cell (``keys``): median censored time-to-learn, fraction learned, fraction escaped, median plateau
    length (a never-escaped run counts its whole run), fraction abrupt among the escaped runs and their median
    width over plateau, number of runs."""
    escaped = as_bool(runs["escaped"]).eq(True)
    runs = runs.assign(
        learned=as_bool(runs["learned"]).eq(True),
        escaped=escaped,
        abrupt_of_escaped=as_bool(runs["abrupt"]).eq(True).where(escaped),
        ratio_of_escaped=pd.to_numeric(runs["width_over_plateau"], errors="coerce").where(escaped),
        search=pd.to_numeric(runs["plateau_length"], errors="coerce").where(escaped, runs["n_iterations"]),
    )
    return (
        runs.groupby(keys, dropna=False)
        .agg(
            ttl=("time_to_learn_censored", "median"),
            learned=("learned", "mean"),
            escaped=("escaped", "mean"),
            plateau=("search", "median"),
            abrupt=("abrupt_of_escaped", "mean"),
            ratio=("ratio_of_escaped", "median"),
            n=("seed", "size"),
        )
        .reset_index()
    )


def tcr_effect(stats: pd.DataFrame, row: str, col: str, others: list[str] | None = None) -> pd.DataFrame:
    """stats plus ``log2_ratio``: log2 of ttl over ttl at lambda = 0 of the same other keys."""
    keys = [k for k in ["task", "arch", "learning_rule", row, col, *(others or [])] if k in stats.columns]
    keys = [k for k in dict.fromkeys(keys) if k != "lambda_tcr"]
    base = stats[stats["lambda_tcr"] == 0.0][keys + ["ttl"]].rename(columns={"ttl": "ttl0"})
    out = stats.merge(base, on=keys, how="left")
    return out.assign(log2_ratio=np.log2(out["ttl"] / out["ttl0"]))


def _tick(v) -> str:
    return v if isinstance(v, str) else f"{v:g}"


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
    ax.set_xticks(range(grid.shape[1]), [_tick(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [_tick(r) for r in grid.index])
    ax.set_xlabel("λ_TCR" if col == "lambda_tcr" else col, fontsize=8)
    ax.set_ylabel("gain", fontsize=8)
    ax.tick_params(labelsize=7)
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.9, pad=0.02)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(which="both", labelsize=6)


def _facet_title(label: dict) -> str:
    parts = [TASK_LABELS.get(label["task"], label["task"]), ARCH_LABELS.get(label["arch"], label["arch"])]
    if label.get("learning_rule") not in (None, "bptt"):
        parts.append(label["learning_rule"])
    parts += [f"{k}={_tick(v)}" for k, v in label.items() if k not in ("task", "arch", "learning_rule")]
    return " · ".join(p.replace("lambda_tcr", "λ") for p in parts)


def draw(runs: pd.DataFrame, family: str, vary: str = ""):
    """The family's figure (see the module docstring)."""
    runs = runs[runs["family"] == family]
    if runs.empty:
        raise SystemExit(f"no runs of scan family {family!r} in the table")
    varied = [v for v in vary.split(",") if v]
    missing = [v for v in varied if v not in runs.columns]
    if missing:
        raise SystemExit(f"--vary {missing} not a column of the scan table")
    col = varied[0] if varied else "lambda_tcr"
    facet = ["task", "arch", "learning_rule", *varied[1:]] + (["lambda_tcr"] if varied else [])
    keys = list(dict.fromkeys(facet + ["gain", col, "lambda_tcr"]))
    stats = tcr_effect(cell_stats(runs, keys), "gain", col, varied[1:])
    with_tcr = bool((stats["lambda_tcr"] > 0).any())
    panels = 4 if with_tcr else 3
    groups = list(stats.groupby(facet, sort=True))
    n_cols = max(stats.groupby(facet)[col].nunique().max(), 2)
    fig, axes = plt.subplots(
        len(groups),
        panels,
        figsize=(panels * (1.6 + 0.7 * n_cols), 0.8 + 2.6 * len(groups)),
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
        title = _facet_title(label)
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
        heatmap(
            ax_row[1],
            group,
            "gain",
            col,
            "escaped",
            lambda c: f"{round(c['escaped'] * c['n']):d}/{c['n']:d}\nplat. {c['plateau']:.0f}",
            "cividis",
            unit_norm,
            "fraction escaped",
        )
        ax_row[1].set_title(f"{title}\n(b) escaped, median plateau length", fontsize=8)
        heatmap(
            ax_row[2],
            group,
            "gain",
            col,
            "abrupt",
            lambda c: f"{c['abrupt']:.2f}\nw/p {c['ratio']:.2f}" if pd.notna(c["ratio"]) else "none\nescaped",
            "magma",
            unit_norm,
            "fraction abrupt (of escaped)",
        )
        ax_row[2].set_title(f"{title}\n(c) abrupt of escaped, median width/plateau", fontsize=8)
        if not with_tcr:
            continue
        if label.get("lambda_tcr", None) == 0.0:
            ax_row[3].axis("off")
            ax_row[3].text(0.5, 0.5, "λ = 0: the reference\nof (d)", ha="center", va="center", fontsize=8)
            continue
        heatmap(
            ax_row[3],
            group,
            "gain",
            col,
            "log2_ratio",
            lambda c: f"{c['log2_ratio']:+.2f}",
            "RdBu_r",
            ratio_norm,
            "log2 ratio (blue: TCR faster)",
        )
        ax_row[3].set_title(f"{title}\n(d) TCR: log2(time at λ / at λ = 0)", fontsize=8)
    n_seeds = int(stats["n"].max())
    fig.suptitle(f"scan family {family}: {n_seeds} exploration seeds per cell", fontsize=10)
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="results/scan/scan.tsv")
    ap.add_argument("--family", required=True, help="a family of the scan file")
    ap.add_argument("--vary", default="", help="the columns the family varies, comma-separated ('' = none)")
    ap.add_argument("--out", nargs="+", required=True, help="output files (.png and/or .pdf)")
    a = ap.parse_args(argv)
    set_style()
    save(draw(pd.read_csv(a.table, sep="\t"), a.family, a.vary), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
