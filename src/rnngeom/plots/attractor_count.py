"""Figure: number of stable fixed points over training, with and without TCR (claim C4: TCR facilitates
attractor formation).

One panel per condition (task · architecture · learning rule · gain); colour = λ_TCR. Thin lines: one seed
each; thick line: the median over seeds at each checkpoint. On the 3-bit flip-flop the learned solution
has 8 stable fixed points (dashed line; rnngeom.constants.EXPECTED_STABLE); the legend then says how many
seeds reached 8 and the median first iteration at which they did (runs.tsv time_to_attractors, the value
claim C4 uses). Fixed points are found at every checkpoint (rnngeom.analysis.run_analysis).

Reads runs.tsv (identity, time_to_attractors, attractors_censored) and checkpoints.tsv (iteration, n_stable).
Expects an experiment varying λ_TCR (any tasks, architectures, rules, gains; each combination is a panel).
"""

from __future__ import annotations

import sys

import numpy as np
from matplotlib.ticker import MaxNLocator

from rnngeom.constants import EXPECTED_STABLE
from rnngeom.io import as_bool
from rnngeom.plots.style import (
    FINAL_ONLY_NOTE,
    conditions,
    fixed_point_time_course,
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


def reached(runs) -> tuple[int, float]:
    """Seeds that reached the expected count (runs.tsv attractors_censored False), and their median
    time_to_attractors."""
    hit = as_bool(runs["attractors_censored"]).eq(False)
    firsts = runs.loc[hit, "time_to_attractors"].astype(float)
    return int(hit.sum()), (float(np.median(firsts)) if len(firsts) else np.nan)


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, _ = load(args)
    ck = load_table(args, "checkpoints", runs)
    runs = runs.assign(condition=conditions(runs), lam=runs["lambda_tcr"].map(lam_str))
    ck = ck.merge(runs[["run_id", "condition", "lam"]], on="run_id")
    palette = lam_palette(runs["lambda_tcr"])
    names = sorted(runs["condition"].unique())
    fig, axes = panel_grid(len(names), ncols=3, width=4.2, height=3.2)
    for ax, cond in zip(axes, names):
        d = ck[ck["condition"] == cond]
        task = runs.loc[runs["condition"] == cond, "task"].iloc[0]
        target = EXPECTED_STABLE.get(task)
        if d.empty or "n_stable" not in d.columns:
            message(ax, "no checkpoint analysis for these runs\n(run rnngeom.analysis.run_analysis)")
        elif not fixed_point_time_course(d).any():
            message(ax, FINAL_ONLY_NOTE)
        for lam in sorted(d["lam"].unique(), key=float):
            dl = d[d["lam"] == lam]
            n_seeds = dl["run_id"].nunique()
            label = f"λ={lam} ({n_seeds} seeds)"
            if target is not None and "time_to_attractors" in runs.columns:
                k, first = reached(runs[runs["run_id"].isin(dl["run_id"])])
                label = f"λ={lam}: {k}/{n_seeds} seeds reach {target}" + (
                    f", median at {first:g}" if k else ""
                )
            seed_lines(ax, dl, "iteration", "n_stable", palette[lam], label=label)
        if target is not None:
            ax.axhline(
                target, color="0.4", ls="--", lw=1.0, zorder=0, label=f"{target} stable (the task's solution)"
            )
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(cond, fontsize=8)
        ax.set_xlabel("training iteration")
        ax.set_ylabel("stable fixed points (count)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6.5, frameon=False, loc="best")
    fig.suptitle(
        "Does TCR facilitate attractor formation? Stable fixed points over training (C4)\n"
        "thin: one seed; thick: median over seeds",
        fontsize=10,
    )
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
