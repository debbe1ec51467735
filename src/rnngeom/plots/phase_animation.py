"""Figure: the phase space over training, one frame per checkpoint (claims C2, C4).

For the run phase_portraits draws (the sharpest abrupt drop, else the lowest final loss, among runs with
fixed points at every checkpoint): in each frame, one checkpoint's held-out trajectories (grey) and its
fixed/slow points coloured by class (stable, saddle, unstable, slow) in the run's fixed PCA frame (PC1, PC2;
fitted once, on the final network), the axes the same in every frame (the trajectories of every checkpoint,
widened to take in the attractors; a frame's title counts the points beyond it); below, the held-out loss
(log scale) with a marker at the frame's checkpoint, the run's GR events (dotted red) and its escape from the
plateau (shaded blue, from the onset to t_drop). Outputs, by extension:

    .gif          the animation (matplotlib's PillowWriter), one frame per checkpoint
    .png, .pdf    every frame side by side, the loss curve below (a static sheet of the same frames)
    .html         a page with the animation and what the run's analysis found and took (the HTML report
                  shows .gif files only as downloads; a page is shown in place)
"""

from __future__ import annotations

import base64
import html
import json
import math
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.animation import PillowWriter

from rnngeom.io import as_bool, atomic_path
from rnngeom.plots.phase_portraits import pick_run
from rnngeom.plots.style import (
    KIND_COLORS,
    KIND_MARKERS,
    load,
    load_table,
    parse_args,
    run_label,
    save,
    set_style,
)

FRAME_MS = 400  # how long each frame shows (the GIF loops)
SHEET_COLUMNS = 6
ANIMATION_DPI = 72  # 403 x 461 pixels: a 21-frame GIF of a 32-unit GRU is ~270 kB


class RunFrames:
    """Everything the frames of one run show: trajectories and points per checkpoint, the loss curve, the
    GR events and the escape, the view limits."""

    def __init__(self, run: pd.Series, metrics, checkpoints, points, events, runs_dir: Path):
        rid = run["run_id"]
        with np.load(Path(runs_dir) / rid / "analysis" / "trajectories_pca.npz") as z:
            self.iterations = z["iterations"].astype(int)
            self.pcs = z["pcs"][..., :2].astype(float)
        info = Path(runs_dir) / rid / "analysis" / "analysis.json"
        self.info = json.loads(info.read_text()) if info.exists() else {}
        self.run = run
        self.curve = metrics[metrics["run_id"] == rid].sort_values("iteration")
        self.points = points[points["run_id"] == rid]
        ck = checkpoints[checkpoints["run_id"] == rid]
        counted = pd.to_numeric(ck.get("n_stable"), errors="coerce").notna() if len(ck) else []
        self.analysed = set(ck.loc[counted, "iteration"].astype(int)) if len(ck) else set(self.iterations)
        self.events = (
            sorted(events.loc[events["run_id"] == rid, "iteration"].astype(int)) if len(events) else []
        )
        self.onset, self.drop = (float(run.get(k, math.nan)) for k in ("t_onset", "t_drop"))
        finite = self.pcs[np.isfinite(self.pcs).all(axis=-1)]
        lo, hi = (finite.min(axis=0), finite.max(axis=0)) if len(finite) else (np.zeros(2) - 1, np.ones(2))
        centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1e-6)
        pts = self.points.loc[self.points["kind"] == "stable", ["pc1", "pc2"]].to_numpy(float)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts):  # attractors off the trajectories widen the view, up to 1.5x the trajectories' extent
            reach = np.abs(pts - centre).max(axis=0)
            half = np.maximum(half, np.minimum(reach, 1.5 * half))
        self.limits = [(centre[d] - 1.1 * half[d], centre[d] + 1.1 * half[d]) for d in (0, 1)]

    def points_at(self, it: int) -> pd.DataFrame:
        return self.points[self.points["iteration"] == it]

    def counts(self, it: int) -> str:
        if it not in self.analysed:
            return "fixed points not analysed here"
        p = self.points_at(it)
        text = ", ".join(f"{int((p['kind'] == k).sum())} {k}" for k in KIND_COLORS if (p["kind"] == k).any())
        (x0, x1), (y0, y1) = self.limits
        outside = int((~(p["pc1"].between(x0, x1) & p["pc2"].between(y0, y1))).sum())
        return (text or "no fixed points") + (f" ({outside} outside the view)" if outside else "")

    def loss_at(self, it: int) -> float:
        c = self.curve[np.isfinite(self.curve["test_loss"])]
        if c.empty:
            return math.nan
        return float(np.exp(np.interp(it, c["iteration"], np.log(np.maximum(c["test_loss"], 1e-30)))))

    def timing_note(self) -> str:
        t, n = self.info.get("timing") or {}, self.info.get("n_checkpoints")
        if not t or not n:
            return ""
        return (
            f"analysis {t['total_s'] / n:.2f} s per checkpoint "
            f"(fixed points {t['fixed_points_mean_s_per_checkpoint']:.2f} s)"
        )


def draw_phase(ax, frames: RunFrames, k: int, small: bool = False) -> None:
    """Checkpoint k's trajectories and fixed/slow points in the run's frame."""
    it = int(frames.iterations[k])
    for trial in frames.pcs[k]:
        ax.plot(trial[:, 0], trial[:, 1], color="0.6", lw=0.5 if small else 0.7, alpha=0.7)
    p = frames.points_at(it)
    for kind, color in KIND_COLORS.items():
        pk = p[p["kind"] == kind]
        if not pk.empty:
            ax.scatter(
                pk["pc1"],
                pk["pc2"],
                c=color,
                marker=KIND_MARKERS[kind],
                s=18 if small else 46,
                label=kind,
                zorder=3,
                edgecolors="k",
                linewidths=0.3,
            )
    ax.set_xlim(frames.limits[0])
    ax.set_ylim(frames.limits[1])
    event = it in frames.events
    ax.set_title(
        f"iteration {it}" + (" (GR event)" if event else "") + ("" if small else f"\n{frames.counts(it)}"),
        fontsize=6 if small else 9,
        color="C3" if event else "k",
    )
    for spine in ax.spines.values():  # ax.clear() keeps spines: set them in every frame
        spine.set_edgecolor("C3" if event else plt.rcParams["axes.edgecolor"])
        spine.set_linewidth(1.5 if event else plt.rcParams["axes.linewidth"])


def draw_curve(ax, frames: RunFrames) -> None:
    """The held-out loss with the GR events and the escape marked."""
    c = frames.curve
    ax.plot(c["iteration"], c["test_loss"], color="k", lw=1.2, label="held-out loss")
    ax.set_yscale("log")
    if np.isfinite(frames.onset) and np.isfinite(frames.drop):
        ax.axvspan(frames.onset, frames.drop, color="C0", alpha=0.2, lw=0, label="escape (onset to t_drop)")
    for j, it in enumerate(frames.events):
        ax.axvline(it, color="C3", ls=":", lw=1.3, label="GR event" if j == 0 else None)
    ax.set_xlabel("training iteration")
    ax.set_ylabel("held-out loss")


def legend_handles():
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], ls="none", marker=KIND_MARKERS[k], color=c, markeredgecolor="k", label=k)
        for k, c in KIND_COLORS.items()
    ]


def write_animation(frames: RunFrames, path: Path) -> int:
    """The GIF, one frame per checkpoint (matplotlib's PillowWriter); returns the number of frames."""
    fig, (ax, ax_loss) = plt.subplots(
        2, 1, figsize=(5.6, 6.4), gridspec_kw={"height_ratios": [3, 1.25]}, layout="constrained"
    )
    fig.suptitle(run_label(frames.run), fontsize=8)
    draw_curve(ax_loss, frames)
    note = frames.timing_note()
    if note:
        ax_loss.set_title(note, fontsize=7, color="0.35")
    marker = ax_loss.axvline(frames.iterations[0], color="C1", lw=1.5, label="this frame")
    (dot,) = ax_loss.plot([], [], "o", color="C1", ms=6, zorder=4)
    ax_loss.legend(fontsize=6, loc="lower left", frameon=False)
    fig.legend(handles=legend_handles(), loc="outside right upper", fontsize=7, frameon=False)
    writer = PillowWriter(fps=1000.0 / FRAME_MS)
    with atomic_path(path) as tmp:
        with writer.saving(fig, str(tmp.with_suffix(".gif")), dpi=ANIMATION_DPI):
            for k, it in enumerate(frames.iterations):
                ax.clear()
                draw_phase(ax, frames, k)
                ax.set_xlabel("PC1")
                ax.set_ylabel("PC2")
                marker.set_xdata([it, it])
                dot.set_data([it], [frames.loss_at(int(it))])
                writer.grab_frame()
        tmp.with_suffix(".gif").replace(tmp)
    plt.close(fig)
    return len(frames.iterations)


def draw_sheet(frames: RunFrames):
    """Every frame side by side, the loss curve below with a tick per checkpoint."""
    n = len(frames.iterations)
    cols = min(SHEET_COLUMNS, n)
    rows = math.ceil(n / cols)
    fig = plt.figure(figsize=(1.9 * cols + 0.9, 1.9 * rows + 2.0), layout="constrained")
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[1] * rows + [1.1])
    for k in range(n):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        draw_phase(ax, frames, k, small=True)
        ax.tick_params(labelsize=5, length=2)
    ax_loss = fig.add_subplot(grid[rows, :])
    draw_curve(ax_loss, frames)
    for it in frames.iterations:
        ax_loss.plot([it], [frames.loss_at(int(it))], "|", color="C1", ms=8)
    ax_loss.legend(fontsize=7, loc="lower left", frameon=False)
    note = frames.timing_note()
    title = f"Phase space at every checkpoint (PC1, PC2 of the final network): {run_label(frames.run)}"
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=9)
    fig.legend(handles=legend_handles(), loc="outside right upper", fontsize=7, frameon=False)
    return fig


def _fmt(value, spec: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def write_page(frames: RunFrames, gif: Path, path: Path) -> None:
    """A self-contained page: the animation (inline) and a table of what the analysis found and took."""
    run, info = frames.run, frames.info
    t, n = info.get("timing") or {}, info.get("n_checkpoints") or len(frames.iterations)
    rows = [
        ("run", run_label(run)),
        ("checkpoints (frames)", len(frames.iterations)),
        ("analysis time per checkpoint", f"{t['total_s'] / n:.2f} s" if t else "unknown"),
        (
            "fixed-point finder per checkpoint",
            f"{t['fixed_points_mean_s_per_checkpoint']:.2f} s" if t else "unknown",
        ),
        (
            "whole analysis",
            f"{t['total_s']:.1f} s on {t.get('num_threads', '?')} thread(s)" if t else "unknown",
        ),
        ("final fixed points", frames.counts(int(frames.iterations[-1]))),
        ("GR events (iterations)", ", ".join(map(str, frames.events)) or "none"),
        (
            "GR threshold / noise floor",
            f"{_fmt(info.get('gr_threshold'))} / {_fmt(info.get('gr_noise_floor'))}",
        ),
        (
            "loss: escaped / abrupt",
            f"{_fmt(as_bool(pd.Series([run.get('escaped')]))[0])} / "
            f"{_fmt(as_bool(pd.Series([run.get('abrupt')]))[0])}",
        ),
        ("loss: onset, t_drop", f"{_fmt(frames.onset)}, {_fmt(frames.drop)}"),
    ]
    table = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    data = base64.b64encode(Path(gif).read_bytes()).decode("ascii")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Phase space over training</title>
<style>body{{font-family:sans-serif;margin:1.5em;color:#222}} img{{max-width:100%;border:1px solid #ddd}}
table{{border-collapse:collapse;margin-top:1em;font-size:0.9em}} th,td{{text-align:left;padding:2px 10px;
border-bottom:1px solid #eee}} th{{color:#555;font-weight:normal}} p{{max-width:46em;font-size:0.9em}}</style>
</head><body>
<h2>Phase space over training</h2>
<img src="data:image/gif;base64,{data}" alt="phase space at each checkpoint, loss curve below">
<p>One frame per checkpoint: held-out trajectories (grey) and fixed/slow points (green stable, orange
saddle, red unstable, grey slow) in the run's fixed PCA frame; below, the held-out loss with a marker at the
frame's checkpoint, the GR events (dotted red) and the escape from the plateau (shaded blue).</p>
<table>
{table}
</table>
</body></html>
"""
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_style()
    runs, metrics = load(args)
    checkpoints = load_table(args, "checkpoints", runs)
    run = pick_run(runs, checkpoints)
    frames = RunFrames(
        run,
        metrics,
        checkpoints,
        load_table(args, "fixed_points", runs),
        load_table(args, "events", runs),
        Path(args.runs_dir),
    )
    outs = [Path(o) for o in args.out]
    unknown = [str(o) for o in outs if o.suffix not in (".gif", ".png", ".pdf", ".html")]
    if unknown:
        raise SystemExit(f"phase_animation writes .gif, .png, .pdf and .html, not {unknown}")
    with tempfile.TemporaryDirectory() as tmp:
        gif = next((o for o in outs if o.suffix == ".gif"), Path(tmp) / "animation.gif")
        if any(o.suffix in (".gif", ".html") for o in outs):
            write_animation(frames, gif)
        for page in (o for o in outs if o.suffix == ".html"):
            write_page(frames, gif, page)
    static = [str(o) for o in outs if o.suffix in (".png", ".pdf")]
    if static:
        save(draw_sheet(frames), static)
    return 0


if __name__ == "__main__":
    sys.exit(main())
