"""Figure: hidden-state speed and ramping activity vs lambda_tcr (claim C8: TCR promotes slow dynamics and
ramping activity).

One row per condition (task · architecture · learning rule · gain); colour = λ_TCR (grey: λ = 0).
Left: hidden-state speed at the last checkpoint, mean ‖x_t − x_{t−1}‖ per step along the held-out
trajectories (log scale); middle: the ramping index at the last checkpoint, mean over units of |Spearman ρ|
between the trial-averaged activity and time (1 = every unit ramps monotonically, 0 = none), minus
ramping_null, the index of autocorrelation-matched surrogate activity without a ramp (what claim C8 tests:
autocorrelation alone raises the raw index); one marker per seed, bar = median over seeds. Right: the speed
over training, thin line per seed, thick = median.

Reads runs.tsv (identity) and checkpoints.tsv (iteration, mean_speed, ramping_index, ramping_null). Expects
an experiment varying λ_TCR. Tables without those columns draw an explanatory note instead.
"""

from __future__ import annotations

import sys

import numpy as np

from rnngeom.constants import final_checkpoints
from rnngeom.plots.style import (
    conditions,
    lam_palette,
    lam_str,
    load,
    load_table,
    message,
    panel_grid,
    parse_args,
    save,
    seed_lines,
    set_style,
)

COLUMNS = {
    "mean_speed": "hidden-state speed $\\|x_t - x_{t-1}\\|$\n(per step, last checkpoint)",
    "ramping_excess": "ramping index − its null\n(last checkpoint)",
}


def strip(ax, final, column: str, order: list[str], palette: dict) -> None:
    """One marker per seed at each λ, and a bar at the median over seeds."""
    for i, lam in enumerate(order):
        v = final.loc[final["lam"] == lam, column].astype(float).to_numpy()
        v = v[np.isfinite(v)]
        if not len(v):
            continue
        ax.bar(i, np.median(v), width=0.6, color="0.88", zorder=0)
        jitter = np.linspace(-0.15, 0.15, len(v)) if len(v) > 1 else np.zeros(1)
        ax.scatter(i + jitter, v, s=24, color=palette[lam], edgecolors="k", linewidths=0.3, zorder=3)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_xlabel("λ_TCR")


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, _ = load(args)
    ck = load_table(args, "checkpoints", runs)
    runs = runs.assign(condition=conditions(runs), lam=runs["lambda_tcr"].map(lam_str))
    ck = ck.merge(runs[["run_id", "condition", "lam"]], on="run_id")
    if {"ramping_index", "ramping_null"} <= set(ck.columns):
        ck = ck.assign(ramping_excess=ck["ramping_index"] - ck["ramping_null"])
    palette = lam_palette(runs["lambda_tcr"])
    order = sorted(runs["lam"].unique(), key=float)
    names = sorted(runs["condition"].unique())
    fig, axes = panel_grid(3 * len(names), ncols=3, width=3.6, height=3.1)
    for row, cond in enumerate(names):
        ax_speed, ax_ramp, ax_time = axes[3 * row : 3 * row + 3]
        d = ck[ck["condition"] == cond]
        final = final_checkpoints(d) if not d.empty else d
        for ax, column in ((ax_speed, "mean_speed"), (ax_ramp, "ramping_excess")):
            if column not in d.columns or d[column].isna().all():
                message(
                    ax,
                    f"checkpoints.tsv has no {COLUMNS[column].split(',')[0]} values\n"
                    "(re-run the analysis and aggregate steps)",
                )
            else:
                strip(ax, final, column, order, palette)
            ax.set_ylabel(COLUMNS[column])
            ax.set_title(cond, fontsize=7)
        if "mean_speed" in d.columns and (d["mean_speed"] > 0).any():
            ax_speed.set_yscale("log")
            for lam in order:
                dl = d[(d["lam"] == lam) & (d["mean_speed"] > 0)]
                if not dl.empty:
                    seed_lines(ax_time, dl, "iteration", "mean_speed", palette[lam], label=f"λ_TCR={lam}")
            ax_time.set_yscale("log")
            ax_time.legend(fontsize=7, frameon=False, loc="best")
        else:
            message(ax_time, "no hidden-state speed in checkpoints.tsv")
        if "ramping_excess" in d.columns:
            ax_ramp.axhline(0.0, color="0.5", lw=0.8, ls=":", zorder=0)
        ax_time.set_xlabel("training iteration")
        ax_time.set_ylabel("hidden-state speed (per step)")
        ax_time.set_title("speed over training", fontsize=7)
    fig.suptitle(
        "Does TCR promote slow dynamics and ramping activity? (C8)\n"
        "markers: one seed; bars: median over seeds; thin lines: one seed, thick: median",
        fontsize=10,
    )
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
