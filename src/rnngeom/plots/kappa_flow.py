"""Figure: the rank-one latent flow over training, a 1-D picture of geometric restructuring (claims C2, C4).

For a rank-one RNN (W = m nᵀ/N) under zero input the dynamics reduce exactly to the latent κ:
κ ← κ + α (f(κ) − κ), f(κ) = nᵀ tanh(m κ + b)/N (see rnngeom.analysis.run_analysis.kappa_flow). One row per
rank-one run of the experiment (at most ``MAX_RUNS``):
  left:  the per-step change dκ = α (f(κ) − κ) against κ at every checkpoint, coloured by training iteration;
         its zero crossings are the fixed points (filled: stable, open: saddle/unstable);
  right: the κ of those fixed points over training (a bifurcation diagram), with t_drop (dashed blue) and
         t_GR (dotted red). GR shows as fixed points appearing, merging or changing stability; C2 asks
         whether this happens before the loss drop.

Reads runs.tsv (arch, t_drop, t_GR, identity) and kappa_flow.tsv (iteration, kappa, dkappa, kind). Expects
an experiment with arch rank1 runs (other architectures are ignored; none is an error).
"""

from __future__ import annotations

import sys

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from rnngeom.plots.style import load, load_table, parse_args, run_label, save, set_style

MAX_RUNS = 8
CMAP = "viridis"


def draw_run(ax_flow, ax_fp, flow, run, norm, cmap) -> None:
    grid = flow[flow["kind"] == "grid"]
    points = flow[flow["kind"] != "grid"]
    for it, d in grid.groupby("iteration", sort=True):
        ax_flow.plot(d["kappa"], d["dkappa"], color=cmap(norm(it)), lw=0.9, alpha=0.85)
    ax_flow.axhline(0.0, color="k", lw=0.8, zorder=0)
    for stable, face in ((True, None), (False, "none")):
        p = points[(points["kind"] == "stable") == stable]
        if p.empty:
            continue
        colors = cmap(norm(p["iteration"].to_numpy()))
        ax_flow.scatter(
            p["kappa"],
            p["dkappa"],
            s=18,
            facecolors=colors if face is None else face,
            edgecolors=colors,
            linewidths=0.9,
            zorder=3,
        )
        ax_fp.scatter(
            p["iteration"],
            p["kappa"],
            s=14,
            facecolors="k" if face is None else face,
            edgecolors="k",
            linewidths=0.8,
            zorder=3,
        )
    for value, style, color in ((run.get("t_drop"), "--", "C0"), (run.get("t_GR"), ":", "C3")):
        if value is not None and np.isfinite(float(value)):
            ax_fp.axvline(float(value), ls=style, color=color, lw=1.3)
    if points.empty:
        ax_fp.text(
            0.5, 0.5, "no fixed point found", ha="center", va="center", transform=ax_fp.transAxes, fontsize=8
        )
    ax_flow.set_title(run_label(run), fontsize=7)
    ax_flow.set_xlabel("latent κ (state x = mκ + b)")
    ax_flow.set_ylabel("dκ per step, α(f(κ) − κ)")
    ax_fp.set_xlabel("training iteration")
    ax_fp.set_ylabel("κ of fixed points")
    ax_fp.set_title("fixed points over training", fontsize=7)


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, _ = load(args)
    runs = runs[runs["arch"] == "rank1"]
    if runs.empty:
        raise SystemExit("no rank-one (arch rank1) runs in this figure's experiment")
    flow = load_table(args, "kappa_flow", runs)
    runs = runs[runs["run_id"].isin(flow["run_id"])] if "kappa" in flow.columns else runs.iloc[:0]
    if runs.empty:
        raise SystemExit(
            "kappa_flow.tsv has no rows for the rank-one runs of this figure: re-run their analysis "
            "(rnngeom.analysis.run_analysis writes analysis/kappa_flow.tsv) and the aggregate step"
        )
    runs = runs.sort_values(["task", "lambda_tcr", "gain", "learning_rule", "seed", "run_id"]).head(MAX_RUNS)
    norm = mpl.colors.Normalize(vmin=float(flow["iteration"].min()), vmax=float(flow["iteration"].max()))
    cmap = mpl.colormaps[CMAP]
    n = len(runs)
    fig, axes = plt.subplots(
        n,
        2,
        figsize=(8.6, 2.7 * n),
        squeeze=False,
        gridspec_kw={"width_ratios": [1.3, 1]},
        layout="constrained",
    )
    for (ax_flow, ax_fp), (_, run) in zip(axes, runs.iterrows()):
        draw_run(ax_flow, ax_fp, flow[flow["run_id"] == run["run_id"]], run, norm, cmap)
    cbar = fig.colorbar(
        mpl.cm.ScalarMappable(norm=norm, cmap=cmap),
        ax=axes.ravel().tolist(),
        shrink=min(1.0, 2.0 / n),
        aspect=20,
    )
    cbar.set_label("training iteration (curve colour)")
    handles = [
        Line2D([], [], ls="none", marker="o", color="k", label="stable fixed point"),
        Line2D([], [], ls="none", marker="o", markerfacecolor="none", color="k", label="saddle / unstable"),
        Line2D([], [], ls="--", color="C0", label="t_drop (loss drop)"),
        Line2D([], [], ls=":", color="C3", label="t_GR (first GR event)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False, fontsize=8)
    fig.suptitle(
        "Rank-one latent flow over training: do fixed points of κ appear (GR) before the loss drop? (C2, C4)",
        fontsize=10,
    )
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
