"""Figure: time-to-learn vs lambda_tcr (claim C3: TCR accelerates training).

Each dot is one seed; runs that never reached the accuracy threshold are drawn at the training length as
open markers ("did not learn", censored), so they are not silently dropped. Bars: median over seeds.
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
    runs = runs.assign(
        censored=~runs["learned"].astype(bool),
        ttl=np.where(runs["learned"].astype(bool), runs["time_to_learn"], runs["n_iterations"]),
        lam=runs["lambda_tcr"].map(lambda v: f"{v:g}"),
        condition=runs["task"].map(TASK_LABELS).fillna(runs["task"]) + " · "
        + runs["arch"].map(ARCH_LABELS).fillna(runs["arch"]) + " · g=" + runs["gain"].map(lambda v: f"{v:g}"),
    )  # fmt: skip
    order = sorted(runs["lam"].unique(), key=float)
    conditions = sorted(runs["condition"].unique())
    fig, axes = plt.subplots(1, len(conditions), figsize=(3.6 * len(conditions), 3.2), squeeze=False)
    for ax, cond in zip(axes[0], conditions):
        d = runs[runs["condition"] == cond]
        sns.barplot(data=d, x="lam", y="ttl", order=order, estimator=np.median, errorbar=None, color="0.85", ax=ax)
        for censored, marker, face in ((False, "o", "C0"), (True, "o", "none")):
            dd = d[d["censored"] == censored]
            if not dd.empty:
                x = [order.index(v) for v in dd["lam"]]
                jitter = np.linspace(-0.15, 0.15, len(dd)) if len(dd) > 1 else [0.0]
                ax.scatter(np.add(x, jitter), dd["ttl"], marker=marker, facecolors=face, edgecolors="C0", zorder=3,
                           label="did not learn (censored)" if censored else "seed")  # fmt: skip
        ax.set_title(cond, fontsize=9)
        ax.set_xlabel("λ_TCR")
        ax.set_ylabel("time to learn (training iterations)")
        ax.set_ylim(bottom=0)
    axes[0][0].legend(fontsize=8, frameon=False)
    fig.suptitle("Time to learn vs λ_TCR (claim C3; bars: median over seeds)", y=1.03)
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
