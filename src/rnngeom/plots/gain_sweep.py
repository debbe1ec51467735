"""Figure: success rate and time-to-learn vs the gain g, with and without TCR (claims C5: TCR rescues
strongly connected networks; C9: little benefit in the non-chaotic, weakly connected regime).

One row per condition (task · architecture · learning rule); colour = λ_TCR (grey: λ = 0).
Left: fraction of seeds that learned at each gain (markers; bars: 95% Wilson interval over seeds).
Right: time to learn, one marker per seed (dodged by λ); seeds that never reached the accuracy threshold
are drawn at the training length + one evaluation step as open markers (censored: runs.tsv
time_to_learn_censored, the value the claims use); the line joins the medians over seeds (a lower bound
where a seed is censored). For the leaky and rank-one RNNs, g = GAIN_THRESHOLD = 1 (dotted) is the onset
of chaos of the initial network.

Reads runs.tsv: task, arch, learning_rule, gain, lambda_tcr, seed, learned, censored, time_to_learn_censored,
n_iterations. Expects an experiment with several gains and λ_TCR = 0 plus at least one λ > 0.
"""

from __future__ import annotations

import sys

import numpy as np

from rnngeom.constants import GAIN_THRESHOLD
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

CHAOTIC_ARCHS = ("leaky", "rank1")  # the initial random network turns chaotic at gain GAIN_THRESHOLD


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion k/n."""
    if n == 0:
        return np.nan, np.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, _ = load(args)
    runs = with_censored_ttl(runs)
    runs = runs.assign(
        lam=runs["lambda_tcr"].map(lam_str),
        condition=conditions(runs, ("task", "arch", "learning_rule")),
    )
    palette = lam_palette(runs["lambda_tcr"])
    lams = sorted(runs["lam"].unique(), key=float)
    gains = np.sort(runs["gain"].astype(float).unique())
    step = float(np.diff(gains).min()) if len(gains) > 1 else 1.0
    offsets = {lam: (i - (len(lams) - 1) / 2) * 0.12 * step for i, lam in enumerate(lams)}
    names = sorted(runs["condition"].unique())
    fig, axes = panel_grid(2 * len(names), ncols=2, width=4.4, height=3.2)
    for row, cond in enumerate(names):
        ax_rate, ax_ttl = axes[2 * row], axes[2 * row + 1]
        d = runs[runs["condition"] == cond]
        top = float(d["n_iterations"].max())
        for lam in lams:
            dl = d[d["lam"] == lam]
            if dl.empty:
                continue
            color, off = palette[lam], offsets[lam]
            stats = dl.groupby("gain")["learned"].agg(["sum", "count"]).sort_index()
            g = stats.index.to_numpy(float)
            rate = (stats["sum"] / stats["count"]).to_numpy()
            ci = np.array([wilson(int(k), int(n)) for k, n in zip(stats["sum"], stats["count"])])
            ax_rate.errorbar(
                g + off,
                rate,
                yerr=[rate - ci[:, 0], ci[:, 1] - rate],
                color=color,
                marker="o",
                ms=5,
                lw=1.4,
                capsize=2,
                label=f"λ_TCR={lam}",
            )
            # seeds spread a little around their (gain, λ) position so equal times stay visible
            rank = dl.groupby("gain")["seed"].rank(method="first").to_numpy() - 1
            size = dl.groupby("gain")["seed"].transform("size").to_numpy()
            x = (
                dl["gain"].to_numpy(float)
                + off
                + (rank - (size - 1) / 2) * 0.03 * step / np.maximum(size - 1, 1)
            )
            for censored, face in ((False, color), (True, "none")):
                m = (dl["censored"] == censored).to_numpy()
                if m.any():
                    ax_ttl.scatter(
                        x[m],
                        dl["ttl"].to_numpy()[m],
                        s=22,
                        facecolors=face,
                        edgecolors=color,
                        linewidths=1.0,
                        zorder=3,
                    )
            med = dl.groupby("gain")["ttl"].median().sort_index()
            ax_ttl.plot(
                med.index.to_numpy(float) + off, med.to_numpy(), color=color, lw=1.4, label=f"λ_TCR={lam}"
            )
        arch = d["arch"].iloc[0]
        for ax in (ax_rate, ax_ttl):
            if arch in CHAOTIC_ARCHS and gains.min() <= GAIN_THRESHOLD <= gains.max():
                ax.axvline(GAIN_THRESHOLD, color="0.5", ls=":", lw=1.0, zorder=0)
            ax.set_xlabel("gain g of the initial recurrent weights")
            ax.set_xticks(gains)
            ax.set_xticklabels([f"{v:g}" for v in gains])
        ax_ttl.axhline(top, color="0.5", ls=":", lw=0.8, zorder=0)
        ax_rate.set_ylim(-0.05, 1.05)
        ax_rate.set_ylabel("fraction of seeds that learned")
        ax_ttl.set_ylim(0, float(d["ttl"].max()) * 1.08)
        ax_ttl.set_ylabel("time to learn (training iterations)")
        ax_rate.set_title(f"{cond}: success rate", fontsize=8)
        ax_ttl.set_title(f"{cond}: time to learn", fontsize=8)
        ax_rate.legend(fontsize=7, frameon=False, loc="best")
    fig.legend(handles=censor_handles(), loc="outside lower center", ncol=3, frameon=False, fontsize=8)
    fig.suptitle(
        "Does TCR rescue strongly connected networks? Learning vs gain g (C5; C9: small benefit at low g)\n"
        "dotted vertical: g = 1, onset of chaos (leaky, rank-one)",
        fontsize=10,
    )
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
