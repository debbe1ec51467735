"""Figure: time-to-learn vs lambda_tcr (claim C3: TCR accelerates training; C6, C7, C10 on other experiments).

One panel per condition (task · architecture · learning rule · gain), so an experiment with several
learning rules (C6: local rules), architectures (C7: LSTM) or gains is faceted, never pooled. Each dot is
one seed; runs that never reached the accuracy threshold (or diverged) are drawn at the training length + one
evaluation step as open markers ("did not learn", censored: runs.tsv time_to_learn_censored, the value the
claims use), so they are not silently dropped. Bars: median over seeds (a lower bound when any seed did not
learn). Above each bar:
the fraction of seeds that learned. With three or more λ values a U-shape (C10: too much TCR hurts) shows.

Reads runs.tsv: task, arch, learning_rule, gain, lambda_tcr, seed, censored, time_to_learn_censored,
n_iterations.
"""

from __future__ import annotations

import sys

import numpy as np
import seaborn as sns

from rnngeom.plots.style import (
    censor_handles,
    conditions,
    lam_palette,
    lam_str,
    load,
    panel_grid,
    parse_args,
    save,
    set_style,
    with_censored_ttl,
)


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, _ = load(args)
    runs = with_censored_ttl(runs)
    runs = runs.assign(
        lam=runs["lambda_tcr"].map(lam_str),
        condition=conditions(runs),
    )
    order = sorted(runs["lam"].unique(), key=float)
    palette = lam_palette(runs["lambda_tcr"])
    names = sorted(runs["condition"].unique())
    fig, axes = panel_grid(len(names), ncols=4, width=3.6, height=3.3)
    for ax, cond in zip(axes, names):
        d = runs[runs["condition"] == cond]
        top = float(d["n_iterations"].max())
        ceiling = max(top, float(d["ttl"].max()))
        sns.barplot(
            data=d, x="lam", y="ttl", order=order, estimator=np.median, errorbar=None, color="0.88", ax=ax
        )
        for i, lam in enumerate(order):
            dl = d[d["lam"] == lam].sort_values("seed")
            if dl.empty:
                continue
            jitter = np.linspace(-0.18, 0.18, len(dl)) if len(dl) > 1 else np.zeros(1)
            color = palette[lam]
            for censored, face in ((False, color), (True, "none")):
                m = (dl["censored"] == censored).to_numpy()
                if m.any():
                    ax.scatter(
                        i + jitter[m],
                        dl["ttl"].to_numpy()[m],
                        s=26,
                        facecolors=face,
                        edgecolors=color,
                        linewidths=1.1,
                        zorder=3,
                    )
            n_learned = int((~dl["censored"]).sum())
            ax.text(i, ceiling * 1.06, f"{n_learned}/{len(dl)}", ha="center", va="bottom", fontsize=8)
        ax.axhline(top, color="0.5", lw=0.8, ls=":", zorder=0)
        ax.set_ylim(0, ceiling * 1.18)
        ax.set_title(cond, fontsize=8)
        ax.set_xlabel("λ_TCR")
        ax.set_ylabel("time to learn (training iterations)")
    fig.legend(handles=censor_handles(), loc="outside lower center", ncol=3, frameon=False, fontsize=8)
    fig.suptitle(
        "Does TCR speed up learning? Time to learn vs λ_TCR\n"
        "bars: median over seeds; k/n above a bar: seeds that learned",
        fontsize=10,
    )
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
