"""Figure: freeze-in training with and without control (claim C11: TCR as the only learning signal
collapses to trivial fixed points unless weights get random perturbations or λ_TCR(t) is controlled).

One row per condition (task · architecture · λ_TCR · gain); colour = learning rule (e.g. freeze_in,
freeze_in_noise, freeze_in_control). Thin lines: one seed each; thick: median over seeds.
Left: activity variance over training (metrics column ``activity_var``, log scale): a collapse shows as
the variance falling towards zero. Middle and right: number of fixed points (all classes) and of stable
fixed points at each checkpoint: a collapse to a trivial solution ends at one stable point.

Reads runs.tsv (identity), metrics.tsv (iteration, activity_var) and checkpoints.tsv (iteration, n_fixed,
n_stable). Expects an experiment varying the learning rule. Metrics without an ``activity_var`` column
(from a trainer that did not record it) give an explanatory note in that panel.
"""

from __future__ import annotations

import sys

import seaborn as sns
from matplotlib.ticker import MaxNLocator

from rnngeom.plots.style import (
    FINAL_ONLY_NOTE,
    conditions,
    fixed_point_time_course,
    load,
    load_table,
    message,
    panel_grid,
    parse_args,
    rule_label,
    save,
    seed_lines,
    set_style,
)

PANELS = [
    ("metrics", "activity_var", "activity variance (log)", True),
    ("checkpoints", "n_fixed", "fixed points, all classes (count)", False),
    ("checkpoints", "n_stable", "stable fixed points (count)", False),
]


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, metrics = load(args)
    tables = {"metrics": metrics, "checkpoints": load_table(args, "checkpoints", runs)}
    runs = runs.assign(condition=conditions(runs, ("task", "arch", "lambda_tcr", "gain")))
    rules = sorted(runs["learning_rule"].unique())
    colors = dict(zip(rules, sns.color_palette("colorblind", len(rules))))
    names = sorted(runs["condition"].unique())
    fig, axes = panel_grid(3 * len(names), ncols=3, width=3.7, height=3.1)
    for row, cond in enumerate(names):
        ids = runs.loc[runs["condition"] == cond, ["run_id", "learning_rule"]]
        for ax, (table, column, ylabel, log) in zip(axes[3 * row : 3 * row + 3], PANELS):
            df = tables[table]
            ax.set_xlabel("training iteration")
            ax.set_ylabel(ylabel)
            ax.set_title(cond, fontsize=7)
            if column not in df.columns:
                message(ax, f"{table}.tsv has no {column} column\n(re-train with a trainer that records it)")
                continue
            d = df[["run_id", "iteration", column]].merge(ids, on="run_id").dropna(subset=[column])
            if log:
                d = d[d[column] > 0]
            if d.empty:
                message(ax, f"no {column} values for these runs")
                continue
            if (
                table == "checkpoints"
                and not fixed_point_time_course(df[df["run_id"].isin(ids["run_id"])]).any()
            ):
                message(ax, FINAL_ONLY_NOTE)
            for rule in rules:
                dr = d[d["learning_rule"] == rule]
                if not dr.empty:
                    seed_lines(
                        ax,
                        dr,
                        "iteration",
                        column,
                        colors[rule],
                        label=f"{rule_label(rule)} ({dr['run_id'].nunique()} seeds)",
                    )
            if log:
                ax.set_yscale("log")
            else:
                ax.set_ylim(bottom=0)
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=6.5, frameon=False, loc="best")
    fig.suptitle(
        "Does freeze-in training collapse to trivial fixed points without weight noise or λ(t) control? "
        "(C11)\nthin: one seed; thick: median over seeds",
        fontsize=10,
    )
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
