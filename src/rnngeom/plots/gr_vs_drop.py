"""Figure: claim C2's test, GR against the weight motion at each run's loss-drop onset (GR precedes the drop).

The runs are those claim C2 uses (``rnngeom.claims.gr_drop.c2_test``): an abrupt drop with an onset t_onset
(the loss leaves its plateau band) and ≥ C2_MIN_TRANSITIONS scored checkpoint transitions of both series.

Left: the two series around the onset. Per run, the calibrated GR ratio gr_score / gr_null_q (orange) and the
weight motion ‖Δθ‖ between the same checkpoints (blue; checkpoints.tsv param_change), each divided by its own
median over training (log axis; 1 = the run's typical level), against checkpoint transitions relative to the
onset (0 = the last transition ending at or before t_onset, drawn at its end). Lines: median over runs; band:
interquartile range. Shaded: the C2_WINDOW transitions whose mean GR ratio is the run's statistic S(t_onset).

Right: per run, u = the rank of S at its own onset among S at the onsets of the other runs of its condition
(0.5 = chance, 1 = its highest just before its own drop), for GR and for the same test on ‖Δθ‖ (the control);
a grey line joins a run's two values. Black: mean u with its bootstrap CI. The title gives what the claim
table reports: mean u, CI, permutation p and verdict of each, and the per-run difference GR − ‖Δθ‖ with its
Wilcoxon p. They are computed by ``c2_test`` with the claim table's settings (``evaluate_claims``' n_boot,
alpha and seed; C2's own random generator), so they equal the table's row whenever the figure and claim C2
draw on the same runs. With too few runs for the permutation the figure draws the u values without a test
and says so.
"""

from __future__ import annotations

import inspect
import sys
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from rnngeom.claims.claim_data import ClaimData
from rnngeom.claims.gr_drop import (
    C2_MIN_ORDERINGS,
    C2_MIN_TRANSITIONS,
    C2_WINDOW,
    C2Test,
    c2_test,
    gr_drop_test,
)
from rnngeom.claims.registry import CLAIM_IDS
from rnngeom.claims.table import _prepare_runs, evaluate_claims
from rnngeom.claims.verdict import NotRun
from rnngeom.plots.style import load, load_table, message, parse_args, save, set_style

OFFSETS = np.arange(-10, 6)  # checkpoint transitions relative to the onset drawn on the left
SERIES = {"gr": ("GR ratio gr_score / gr_null_q", "C1"), "motion": ("weight motion ‖Δθ‖", "C0")}


def claim_settings() -> dict:
    """n_boot, alpha and seed of the claim table (``evaluate_claims``' defaults: the pipeline passes none)."""
    params = inspect.signature(evaluate_claims).parameters
    return {k: params[k].default for k in ("n_boot", "alpha", "seed")}


def claim_data(runs: pd.DataFrame, checkpoints: pd.DataFrame) -> ClaimData:
    """C2's input as the claim table builds it: its run table, its settings and C2's own random generator."""
    s = claim_settings()
    rng = np.random.default_rng([s["seed"], CLAIM_IDS.index("C2") + 1])
    return ClaimData(_prepare_runs(runs), {"checkpoints": checkpoints}, {}, rng, s["n_boot"], s["alpha"])


def per_run_u(c2: C2Test) -> pd.DataFrame:
    """run_id, t_onset, u_gr, u_motion of the runs C2 used (u_motion NaN where the control left a run out).

    Testable: the u of C2's test and control. Not testable (too few orderings of the onsets): the same
    ranks from ``gr_drop_test``, which gives them without a p-value, on the runs it would use."""
    scored = c2.scored
    if scored.empty:  # (then without columns, too)
        return pd.DataFrame(columns=["run_id", "t_onset", "u_gr", "u_motion"])
    if c2.main is not None:
        gr = pd.Series(c2.main.u, index=c2.main.run_ids)
        motion = pd.Series(c2.control.u, index=c2.control.run_ids) if c2.control else pd.Series(dtype=float)
    else:
        gr = motion = pd.Series(dtype=float)
        if len(scored) >= 2:  # no permutation runs below C2_MIN_ORDERINGS: the generator is not drawn from
            rng = np.random.default_rng(0)
            onsets, ids = scored["t_onset"].to_numpy(float), list(scored["run_id"])
            u, _, used = gr_drop_test([c2.gr[r] for r in ids], onsets, c2.groups, rng, 1)
            gr = pd.Series(u, index=[r for r, k in zip(ids, used) if k])
            if len(gr) >= 2:
                keep = np.asarray(used)
                u, _, used = gr_drop_test(
                    [c2.motion[r] for r in gr.index], onsets[keep], c2.groups[keep], rng, 1
                )
                motion = pd.Series(u, index=[r for r, k in zip(gr.index, used) if k])
    out = scored[scored["run_id"].isin(gr.index)][["run_id", "t_onset"]].copy()
    out["u_gr"] = out["run_id"].map(gr).astype(float)
    out["u_motion"] = out["run_id"].map(motion).astype(float)
    return out.reset_index(drop=True)


def aligned(series: dict, onsets: pd.DataFrame) -> tuple[np.ndarray, float]:
    """(runs × OFFSETS array of each run's series ÷ its median over training, median onset position).

    Offset 0 is the last transition ending at or before the run's t_onset (as in ``gr_window_at``); the
    position is where t_onset lies between the ends of transitions 0 and 1, as a fraction of that interval."""
    rows, positions = [], []
    for run_id, onset in zip(onsets["run_id"], onsets["t_onset"]):
        its, values = series[run_id]
        positive = values[values > 0]
        row = np.full(len(OFFSETS), np.nan)
        if len(positive):
            k0 = int(np.searchsorted(its, onset, side="right")) - 1
            k = k0 + OFFSETS
            ok = (k >= 0) & (k < len(values))
            row[ok] = values[k[ok]] / np.median(positive)
            if 0 <= k0 < len(its) - 1:
                positions.append((onset - its[k0]) / (its[k0 + 1] - its[k0]))
        rows.append(row)
    position = float(np.median(positions)) if positions else 0.5
    return np.array(rows).reshape(len(rows), len(OFFSETS)), position


def note(ax, text: str) -> None:
    """A panel with nothing to draw: the reason, no ticks."""
    message(ax, text)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_aligned(ax, c2: C2Test, u: pd.DataFrame) -> None:
    if u.empty:
        note(ax, "no run with an abrupt drop and a scored GR\nand ‖Δθ‖ series to align on its onset")
        return
    position = aligned(c2.gr, u)[1]
    for key, data in (("gr", c2.gr), ("motion", c2.motion)):
        label, color = SERIES[key]
        values = aligned(data, u)[0]
        n = np.isfinite(values).sum(axis=0)
        shown = n >= min(3, len(u))  # offsets at which few runs have a transition: left out
        with warnings.catch_warnings():  # offsets no run reaches: NaN, not drawn
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanpercentile(np.where(shown, values, np.nan), [25, 50, 75], axis=0)
        ax.fill_between(OFFSETS, q[0], q[2], color=color, alpha=0.22, lw=0)
        ax.plot(OFFSETS, q[1], color=color, lw=2.0, marker="o", ms=3)
    ax.axvspan(-C2_WINDOW + 0.5, 0.5, color="0.85", zorder=0)
    ax.axvline(position, color="k", ls="--", lw=1.2)
    ax.axhline(1.0, color="0.5", lw=0.7, ls=":", zorder=0)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(OFFSETS[0] - 0.5, OFFSETS[-1] + 0.5)
    ax.set_xticks(OFFSETS[::2] if len(OFFSETS) > 10 else OFFSETS)
    ax.set_title(
        f"The two series around the drop onset: median and interquartile range of {len(u)} runs", fontsize=9
    )


def draw_u(ax, u: pd.DataFrame) -> None:
    if u.empty:
        note(
            ax,
            "no u values: no run has an abrupt drop whose window\n"
            "fits at its own and another onset of its condition",
        )
        return
    jitter = np.linspace(-0.12, 0.12, len(u)) if len(u) > 1 else np.zeros(1)
    jitter = np.random.default_rng(0).permutation(jitter)  # ties (u is a rank) spread, in no order
    for x, (_, r) in zip(jitter, u.iterrows()):
        if np.isfinite(r["u_motion"]):
            ax.plot([x, 1 + x], [r["u_gr"], r["u_motion"]], color="0.6", lw=0.6, alpha=0.6, zorder=1)
    for i, key in enumerate(("gr", "motion")):
        values = u[f"u_{key}"].to_numpy(float)
        ok = np.isfinite(values)
        ax.scatter(i + jitter[ok], values[ok], s=18, color=SERIES[key][1], zorder=2, edgecolors="none")
    ax.axhline(0.5, color="0.3", ls="--", lw=1.0, zorder=0)
    ax.set_xticks([0, 1], ["GR ratio", "‖Δθ‖ (control)"])
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(-0.04, 1.04)
    ax.set_ylabel("u: rank of S at its own onset among\nS at the other onsets of its condition")


def mean_ci(ax, x: float, effect: float, low: float, high: float) -> None:
    """The test's mean u and bootstrap CI beside its strip."""
    ax.errorbar(
        x,
        effect,
        yerr=[[effect - low], [high - effect]],
        fmt="D",
        color="k",
        ms=5,
        capsize=3,
        lw=1.4,
        zorder=3,
    )


def fmt(v: float) -> str:
    return f"{v:.2g}" if abs(v) < 0.01 and v != 0 else f"{v:.2f}"


def titles(c2: C2Test | None, u: pd.DataFrame, why_not: str) -> tuple[str, str]:
    """(figure title: what the claim table decided, panel title: the numbers behind it)."""
    head = "Claim C2, GR precedes the loss drop"
    if c2 is None:
        return f"{head}: not run ({why_not})", "no test"
    if c2.main is None:
        counts = (
            f"{head}: not testable here. {len(c2.on_plateau)} of {c2.n_runs} runs have an abrupt drop, "
            f"{len(c2.scored)} of them with ≥ {C2_MIN_TRANSITIONS} scored transitions of GR and ‖Δθ‖"
        )
        if c2.scored.empty:
            return f"{counts}: no run to test", "no test"
        sizes = ", ".join(map(str, pd.Series(c2.groups).value_counts()))
        return (
            f"{counts}\n(in conditions of {sizes} runs): too few for the permutation, which needs ≥ "
            f"{C2_MIN_ORDERINGS} orderings of the onsets within conditions (e.g. 5 runs of one condition)",
            f"no test: u of the {len(u)} runs whose window fits at their own onset\nand at another onset of "
            f"their condition" + (f" (mean u: GR {fmt(u['u_gr'].mean())})" if len(u) else ""),
        )
    main, control = c2.main, c2.control
    head = f"{head}: {c2.verdict[0]} ({c2.verdict[1]}), {main.n} runs with an abrupt drop"
    lines = [
        f"GR: mean u {fmt(main.effect)} [{fmt(main.ci_low)}, {fmt(main.ci_high)}], p = {main.p_value:.2g} "
        f"→ {c2.verdict[0]}"
    ]
    if control is None:
        return f"{head}\nControl, weight motion ‖Δθ‖: not testable", "\n".join(
            [*lines, "‖Δθ‖: not testable (too few runs with a window)"]
        )
    too = " too" if c2.control_verdict[0] == c2.verdict[0] else ""
    above = "above 0" if c2.difference_p < claim_settings()["alpha"] else "no evidence it is above 0"
    lo, hi = c2.difference_ci
    lines += [
        f"‖Δθ‖: mean u {fmt(control.effect)} [{fmt(control.ci_low)}, {fmt(control.ci_high)}], "
        f"p = {control.p_value:.2g} → {c2.control_verdict[0]}",
        f"GR − ‖Δθ‖ per run: mean {fmt(c2.difference.mean())} [{fmt(lo)}, {fmt(hi)}], "
        f"Wilcoxon p = {c2.difference_p:.2g}",
    ]
    return (
        f"{head}\nControl, weight motion ‖Δθ‖: {c2.control_verdict[0]}{too}; GR − ‖Δθ‖ per run: {above} "
        f"(one-sided Wilcoxon p = {c2.difference_p:.2g})",
        "\n".join(lines),
    )


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, _ = load(args)
    checkpoints = load_table(args, "checkpoints", runs)
    c2, why_not = None, ""
    try:
        c2 = c2_test(claim_data(runs, checkpoints))
        u = per_run_u(c2)
    except NotRun as err:
        why_not, u = str(err), pd.DataFrame()
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(11.0, 4.4), width_ratios=[1.7, 1.0], layout="constrained")
    if c2 is None:
        note(ax_a, f"nothing to align: {why_not}")
        note(ax_b, "no u values: C2 not run")
    else:
        draw_aligned(ax_a, c2, u)
        draw_u(ax_b, u)
        if c2.main is not None:
            mean_ci(ax_b, -0.35, c2.main.effect, c2.main.ci_low, c2.main.ci_high)
        if c2.control is not None:
            mean_ci(ax_b, 1.35, c2.control.effect, c2.control.ci_low, c2.control.ci_high)
    ax_a.set_xlabel("checkpoint transitions relative to the drop onset (0: last one ending ≤ t_onset)")
    ax_a.set_ylabel("value ÷ the run's median over training")
    suptitle, panel_title = titles(c2, u, why_not)
    ax_b.set_title(panel_title, fontsize=8)
    handles = [
        Line2D([], [], color=SERIES["gr"][1], lw=2, label=SERIES["gr"][0]),
        Line2D([], [], color=SERIES["motion"][1], lw=2, label=SERIES["motion"][0]),
        Patch(color="0.85", label=f"the {C2_WINDOW} transitions of S(t_onset)"),
        Line2D([], [], color="k", ls="--", lw=1.2, label="t_onset (median position)"),
        Line2D([], [], color="0.3", ls="--", lw=1.0, label="u = 0.5: chance"),
    ]
    if c2 is not None and c2.main is not None:
        handles.append(Line2D([], [], color="k", marker="D", ls="none", label="mean u, bootstrap CI"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False, fontsize=8)
    fig.suptitle(suptitle, fontsize=10)
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
