"""Figure: t_GR vs t_drop across runs (claim C2: GR events precede the loss drop).

Each dot is a run with both a detected drop and a calibrated GR event; points above the diagonal have GR after
the drop. The title counts runs with GR before the drop, after it, and runs lacking a drop or an event.
Descriptive only: t_GR is the first of many chances to fire, so "before" is the likely outcome even when GR
timing is independent of the drop; claim C2 tests the GR score aligned on the drop's onset t_onset instead
(rnngeom.claims.gr_drop).
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from rnngeom.plots.style import ARCH_LABELS, TASK_LABELS, load, parse_args, save, set_style


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, _ = load(args)
    both = runs[np.isfinite(runs["t_drop"].astype(float)) & np.isfinite(runs["t_GR"].astype(float))].copy()
    before = int((both["t_GR"] < both["t_drop"]).sum())
    fig, ax = plt.subplots(figsize=(4.4, 4.0))
    if not both.empty:
        both["architecture"] = both["arch"].map(ARCH_LABELS).fillna(both["arch"])
        both["task "] = both["task"].map(TASK_LABELS).fillna(both["task"])
        sns.scatterplot(data=both, x="t_drop", y="t_GR", hue="architecture", style="task ", s=45, ax=ax)
        hi = float(max(both["t_drop"].max(), both["t_GR"].max())) * 1.05
        ax.plot([0, hi], [0, hi], color="0.5", lw=1, ls="--", zorder=0)
        ax.set_xlim(0, hi)
        ax.set_ylim(0, hi)
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    else:
        ax.text(
            0.5,
            0.5,
            "no run has both a drop and a GR event",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    ax.set_xlabel("t_drop (training iteration)")
    ax.set_ylabel("t_GR, first GR event (training iteration)")
    n_missing = len(runs) - len(both)
    ax.set_title(
        f"GR before drop: {before}/{len(both)} runs; {n_missing} runs lack a drop, a GR event or both",
        fontsize=9,
    )
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
