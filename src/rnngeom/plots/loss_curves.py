"""Figure: held-out loss over training for every task (rows) and architecture (columns).

Abrupt learning (claim C1) shows as a long plateau (search phase) followed by a steep fall of the log-loss.
One line per seed and lambda_tcr, so the spread across seeds is visible.
"""

from __future__ import annotations

import sys

import seaborn as sns

from rnngeom.plots.style import ARCH_LABELS, TASK_LABELS, load, parse_args, save, set_style


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, metrics = load(args)
    df = metrics.assign(
        task=metrics["task"].map(TASK_LABELS).fillna(metrics["task"]),
        arch=metrics["arch"].map(ARCH_LABELS).fillna(metrics["arch"]),
        lam=metrics["lambda_tcr"].map(lambda v: f"{v:g}"),
    ).rename(columns={"lam": "λ_TCR"})
    hue_order = sorted(df["λ_TCR"].unique(), key=float)
    g = sns.relplot(
        data=df,
        x="iteration",
        y="test_loss",
        row="task",
        col="arch",
        hue="λ_TCR",
        hue_order=hue_order,
        units="seed",
        estimator=None,
        kind="line",
        height=2.4,
        aspect=1.25,
        facet_kws={"sharey": "row", "margin_titles": True},
        linewidth=1.2,
        alpha=0.85,
    )
    g.set(yscale="log")
    g.set_axis_labels("training iteration", "held-out loss (MSE, log)")
    g.set_titles(row_template="{row_name}", col_template="{col_name}")
    g.figure.suptitle("Held-out loss over training (claim C1: plateau, then a sudden drop?)", y=1.02)
    save(g.figure, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
