"""Figure: the GR score on top of the loss curve, one panel per run (claim C2: GR precedes the drop).

Black: held-out loss (log scale, left axis). Orange: GR score of the transition into each checkpoint (right
axis); thin dashed orange: the run's calibrated event threshold gr_null_q for that pair (an event is a score
above it). Dashed blue: t_drop (midpoint of the loss fall); dotted red: t_GR (first calibrated GR event).
Runs with an abrupt drop are shown first; at most ``MAX_PANELS`` panels.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

from rnngeom.io import as_bool
from rnngeom.plots.style import load, load_table, message, parse_args, run_label, save, set_style

MAX_PANELS = 12


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, metrics = load(args)
    checkpoints = load_table(args, "checkpoints", runs)
    runs = runs.assign(abrupt=as_bool(runs["abrupt"]).eq(True))
    runs = runs.sort_values(["abrupt", "run_id"], ascending=[False, True]).head(MAX_PANELS)
    n = len(runs)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, (_, run) in zip(axes.flat, runs.iterrows()):
        m = metrics[metrics["run_id"] == run["run_id"]]
        ax.plot(m["iteration"], m["test_loss"], color="k", lw=1.2, label="held-out loss")
        ax.set_yscale("log")
        c = checkpoints[checkpoints["run_id"] == run["run_id"]]
        ax2 = ax.twinx()
        if "gr_score" in c.columns and c["gr_score"].notna().any():
            ax2.plot(c["iteration"], c["gr_score"], color="C1", lw=1.0, marker=".", label="GR score")
        else:  # a run analysed at the final checkpoint only (experiment analysis: final) has no GR scores
            message(ax, "no GR scores for this run\n(experiment analysis: final)")
        if "gr_null_q" in c.columns:
            ax2.plot(c["iteration"], c["gr_null_q"], color="C1", lw=0.7, ls="--", label="event threshold")
        ax2.set_ylim(bottom=0)
        for value, style, color in ((run.get("t_drop"), "--", "C0"), (run.get("t_GR"), ":", "C3")):
            if value is not None and np.isfinite(value):
                ax.axvline(value, ls=style, color=color, lw=1.4)
        ax.set_title(run_label(run), fontsize=7)
        ax.set_xlabel("training iteration")
        ax.set_ylabel("held-out loss (MSE)")
        ax2.set_ylabel("GR score", color="C1")
    fig.suptitle("GR score and loss drop per run (dashed: t_drop, dotted: t_GR)", y=1.01)
    fig.tight_layout()
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
