"""Figure: phase portraits before, during and after the loss drop (claims C2, C4).

For one run of the experiment (the abrupt run with the fastest escape relative to its plateau,
width_over_plateau; the lowest final loss if none is abrupt): held-out trajectories (grey) and fixed/slow
points coloured by class, in the run's fixed PCA frame (fitted once on the final model), at the start of
training, the last checkpoint on the plateau (at or before the drop's onset), after the drop (t_drop plus
the escape's width) and the end of training.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rnngeom.io import as_bool
from rnngeom.plots.style import (
    KIND_COLORS,
    KIND_MARKERS,
    fixed_point_time_course,
    load,
    load_table,
    parse_args,
    run_label,
    save,
    set_style,
)


def pick_run(runs, checkpoints):
    """The sharpest abrupt drop (else the lowest final loss), among the runs with fixed points at every
    checkpoint where there are any (experiment analysis: full)."""
    full = fixed_point_time_course(checkpoints)
    full_runs = runs[runs["run_id"].map(full).eq(True)]
    runs = full_runs if not full_runs.empty else runs
    dropped = runs[as_bool(runs["abrupt"]).eq(True)]
    if not dropped.empty:
        return dropped.sort_values(["width_over_plateau", "run_id"]).iloc[0]
    return runs.sort_values(["final_test_loss", "run_id"]).iloc[0]


def nearest(iterations: np.ndarray, target: float) -> int:
    return int(iterations[np.argmin(np.abs(iterations - target))])


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, _ = load(args)
    checkpoints = load_table(args, "checkpoints", runs)
    run = pick_run(runs, checkpoints)
    points = load_table(args, "fixed_points", runs)
    points = points[points["run_id"] == run["run_id"]]
    ck = checkpoints[checkpoints["run_id"] == run["run_id"]]
    known = pd.to_numeric(ck["n_stable"], errors="coerce").notna() if "n_stable" in ck.columns else True
    analysed = set(ck.loc[known, "iteration"].astype(float)) if len(ck) else None
    with np.load(Path(args.runs_dir) / run["run_id"] / "analysis" / "trajectories_pca.npz") as z:
        its, pcs = z["iterations"].astype(float), z["pcs"]
    t_onset, t_drop = (float(run.get(k, np.nan)) for k in ("t_onset", "t_drop"))
    if np.isfinite(t_onset) and np.isfinite(t_drop):
        # the last checkpoint on the plateau, at or before the onset; after the escape by as long again
        on_plateau = its[its <= t_onset][-1] if (its <= t_onset).any() else its[0]
        wanted = [its[0], on_plateau, t_drop + (t_drop - t_onset), its[-1]]
        names = ["start", "on the plateau (onset)", "after the drop", "end"]
    else:
        wanted = list(np.quantile(its, [0, 1 / 3, 2 / 3, 1]))
        names = ["start", "1/3", "2/3", "end (no drop detected)"]
    chosen = [nearest(its, w) for w in wanted]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), sharex=True, sharey=True)
    for ax, it, name in zip(axes, chosen, names):
        k = int(np.flatnonzero(its == it)[0])
        for trial in pcs[k]:
            ax.plot(trial[:, 0], trial[:, 1], color="0.6", lw=0.6, alpha=0.7)
        p = points[points["iteration"] == it]
        for kind, color in KIND_COLORS.items():
            pk = p[p["kind"] == kind]
            if not pk.empty:
                ax.scatter(
                    pk["pc1"],
                    pk["pc2"],
                    c=color,
                    marker=KIND_MARKERS[kind],
                    s=40,
                    label=kind,
                    zorder=3,
                    edgecolors="k",
                    linewidths=0.3,
                )
        counts = ", ".join(
            f"{int((p['kind'] == kd).sum())} {kd}" for kd in KIND_COLORS if (p["kind"] == kd).any()
        )
        if (
            analysed is not None and it not in analysed
        ):  # the run's fixed points were found at its final checkpoint only
            counts = "not analysed (analysis: final)"
        ax.set_title(f"{name}: iteration {it}\n{counts or 'no fixed points'}", fontsize=8)
        ax.set_xlabel("PC1")
    axes[0].set_ylabel("PC2")
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="center right", frameon=False, fontsize=8)
    fig.suptitle(f"Phase portraits over training: {run_label(run)}", y=1.04, fontsize=10)
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
