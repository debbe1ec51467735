"""Every figure module end to end on small synthetic tables (written by rnngeom.aggregate from fake run
folders, so the format is the real one): PNG and PDF written, run selection by exact run ids, and a clear
error for a figure whose experiment selects no runs."""

from __future__ import annotations

import copy
import importlib
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SELECTION_CONFIG

from rnngeom.aggregate import main as aggregate_main
from rnngeom.analysis.gr_events import EVENT_COLUMNS, SCORE_COLUMNS
from rnngeom.analysis.run_analysis import FIXED_POINT_COLUMNS, KAPPA_FLOW_COLUMNS, SUMMARY_COLUMNS, kappa_flow
from rnngeom.config import experiment_runs
from rnngeom.constants import RUN_KEYS
from rnngeom.models import build_model
from rnngeom.plots.style import load, parse_args

ITERS = np.arange(0, 1001, 50)  # evaluations
CKPTS = np.arange(0, 1001, 100)  # checkpoints
N_ITER = 1000

# The synthetic runs, written as grids for brevity (figures get their run ids: --run-ids). Small, so that
# every figure stays cheap to draw; together they cover several learning rules, gains, rank-one runs and
# freeze-in rules.
GRIDS = {
    "speedup": {
        "task": ["flipflop"],
        "arch": ["leaky"],
        "learning_rule": ["bptt", "rflo"],
        "lambda_tcr": [0.0, 0.5],
        "gain": [2.0],
        "seed": [0, 1],
    },
    "gain": {
        "task": ["flipflop"],
        "arch": ["leaky"],
        "learning_rule": ["bptt"],
        "lambda_tcr": [0.0, 0.5],
        "gain": [1.0, 2.0],
        "seed": [0, 1],
    },
    "rank1": {
        "task": ["flipflop"],
        "arch": ["rank1"],
        "learning_rule": ["bptt"],
        "lambda_tcr": [0.0, 0.5],
        "gain": [1.0],
        "seed": [0],
    },
    "freeze": {
        "task": ["flipflop"],
        "arch": ["leaky"],
        "learning_rule": ["freeze_in", "freeze_in_noise", "freeze_in_control"],
        "lambda_tcr": [1.0],
        "gain": [1.5],
        "seed": [0, 1],
    },
}
BPTT_G2 = {**GRIDS["speedup"], "learning_rule": ["bptt"]}  # a subset of the runs above: one condition

# figure module -> the runs it draws (a list of grid names, or a grid)
FIGURES = {
    "loss_curves": ["rank1", "gain"],
    "tcr_speedup": ["speedup"],
    "gr_timeline": ["rank1"],
    "gr_vs_drop": ["speedup", "rank1"],
    "phase_portraits": ["rank1"],
    "phase_animation": ["rank1"],
    "kappa_flow": ["rank1"],
    "attractor_count": ["speedup"],
    "gain_sweep": ["gain"],
    "slow_dynamics": BPTT_G2,
    "freeze_in": ["freeze"],
}


def grid_runs(grid: dict):
    keys = list(grid)
    for values in pd.MultiIndex.from_product([grid[k] for k in keys]):
        yield dict(zip(keys, values))


def run_id(r: dict) -> str:
    return f"{r['task']}/{r['arch']}/{r['learning_rule']}/lam{r['lambda_tcr']}/g{r['gain']}/seed{r['seed']}"


def ids_of(grids) -> list[str]:
    """Run ids of a grid, or of the union of named grids."""
    grids = [GRIDS[g] for g in grids] if isinstance(grids, list) else [grids]
    return sorted({run_id(r) for grid in grids for r in grid_runs(grid)})


def fake_run(root: Path, r: dict) -> Path:
    """A run folder as train.py + run_analysis write it, with plausible synthetic numbers."""
    rid = run_id(r)
    d = root / "runs" / rid
    (d / "analysis").mkdir(parents=True)
    rng = np.random.default_rng(zlib.crc32(rid.encode()))
    lam, g = float(r["lambda_tcr"]), float(r["gain"])
    frozen = r["learning_rule"].startswith("freeze")
    # TCR drops earlier; the strongly connected, λ = 0, seed 1 run never learns
    never = (lam == 0 and g >= 2 and r["seed"] == 1) or frozen
    t_drop = None if never else 600 - 300 * (lam > 0) + 40 * r["seed"] + 100 * (r["learning_rule"] == "rflo")
    loss = 0.5 * np.ones(len(ITERS)) if t_drop is None else 0.5 - 0.49 / (1 + np.exp(-(ITERS - t_drop) / 20))
    metrics = pd.DataFrame(
        {
            "iteration": ITERS,
            "task_loss": loss,
            "tcr_loss": 0.01,
            "test_loss": loss * (1 + 0.05 * rng.random(len(ITERS))),
            "test_accuracy": 1 - loss,
            "grad_norm": 1.0,
            "lambda_tcr_now": lam,
            "diverged": False,
        }
    )
    decay = {"freeze_in": 5e-3, "freeze_in_noise": 1e-3, "freeze_in_control": 0.0}.get(r["learning_rule"], 0)
    metrics.insert(6, "activity_var", 0.3 * np.exp(-decay * ITERS) + 1e-4 * rng.random(len(ITERS)))
    metrics.to_csv(d / "metrics.tsv", sep="\t", index=False)
    settings = {**r, "model": {"n_hidden": 8}, "training": {"n_iterations": N_ITER}}
    (d / "provenance.json").write_text(json.dumps({"settings": settings, "wall_seconds": 1.0}))

    after = CKPTS >= (t_drop if t_drop is not None else 10**9)
    n_stable = np.where(after, 8, 1) if not frozen else np.ones(len(CKPTS), int)
    ramp = np.clip(0.3 + 0.4 * lam + 0.1 * rng.random(len(CKPTS)), 0, 1)
    summary = pd.DataFrame(
        {
            "iteration": CKPTS,
            "n_fixed": n_stable + 3 * after,
            "n_stable": n_stable,
            "n_saddle": 3 * after,
            "n_unstable": 0,
            "n_slow": rng.integers(0, 3, len(CKPTS)),
            "mean_speed": 0.5 / (1 + 5 * lam) * np.exp(-CKPTS / 800) + 0.01,
            "mean_tcr": 0.01,
            "ramping_index": ramp,
            "ramping_null": 0.8 * ramp,
            "param_change": np.r_[np.nan, np.full(len(CKPTS) - 1, 0.1)],
            "gr_null_q": np.r_[np.nan, np.full(len(CKPTS) - 1, 2.0)],
        }
    )
    extra = [c for c in ("ramping_null", "gr_null_q") if c not in SUMMARY_COLUMNS]  # the new contract columns
    summary = summary[SUMMARY_COLUMNS + extra]
    summary.to_csv(d / "analysis/checkpoint_summary.tsv", sep="\t", index=False)
    score = pd.DataFrame({c: 0.0 for c in SCORE_COLUMNS}, index=range(len(CKPTS) - 1))
    score["iteration_prev"], score["iteration"] = CKPTS[:-1], CKPTS[1:]
    score["score"] = rng.random(len(score)) + 3.0 * (np.abs(CKPTS[1:] - (t_drop or -999) + 50) < 60)
    score.to_csv(d / "analysis/gr_scores.tsv", sep="\t", index=False)
    events = score[score["score"] > 2.0].assign(threshold=2.0)[EVENT_COLUMNS]
    events.to_csv(d / "analysis/events.tsv", sep="\t", index=False)
    rows = []
    for it, ns in zip(CKPTS, n_stable):
        for k in range(int(ns)):
            rows.append(
                {
                    "iteration": it,
                    "point_id": k,
                    "pc1": np.cos(k),
                    "pc2": np.sin(k),
                    "pc3": 0.0,
                    "q": 1e-12,
                    "max_abs_eig": 0.5,
                    "n_unstable_modes": 0,
                    "kind": "stable",
                }
            )
    pd.DataFrame(rows, columns=FIXED_POINT_COLUMNS).to_csv(
        d / "analysis/fixed_points.tsv", sep="\t", index=False
    )
    flows = []
    if r["arch"] == "rank1":  # the real latent flow of a rank-one model whose m grows: a pitchfork part-way
        model = build_model({"arch": "rank1", "n_in": 1, "n_out": 1, "n_hidden": 6, "alpha": 1.0})
        with torch.no_grad():
            model.n.copy_(torch.linspace(0.7, 1.3, 6))
            model.b.fill_(0.05)
            for it in CKPTS:
                model.m.copy_(torch.linspace(0.8, 1.2, 6) * (0.4 + 2.0 * it / N_ITER))
                flows.append(kappa_flow(model, n_grid=41).assign(iteration=int(it)))
    flow = pd.concat(flows)[KAPPA_FLOW_COLUMNS] if flows else pd.DataFrame(columns=KAPPA_FLOW_COLUMNS)
    flow.to_csv(d / "analysis/kappa_flow.tsv", sep="\t", index=False)
    (d / "analysis/analysis.json").write_text(
        json.dumps(
            {
                "t_GR": None if t_drop is None else t_drop - 80.0,
                "n_gr_events": len(events),
                "gr_noise_floor": 0.5,
                "gr_threshold": 2.0,
                "final_counts": {"n_stable": int(n_stable[-1])},
            }
        )
    )
    pcs = np.cumsum(rng.normal(0, 0.1, (len(CKPTS), 8, 20, 3)), axis=2).astype(np.float32)
    with open(d / "analysis/trajectories_pca.npz", "wb") as f:
        np.savez(f, iterations=CKPTS, pcs=pcs, pca_mean=np.zeros(8), pca_components=np.eye(3, 8))
    return d


def make_tables(root: Path) -> Path:
    runs = {json.dumps(r, sort_keys=True): r for grid in GRIDS.values() for r in grid_runs(grid)}
    dirs = [str(fake_run(root, r)) for r in runs.values()]
    assert (
        aggregate_main(["--thresholds", '{"flipflop": 0.9}', "--out-dir", str(root / "tables"), *dirs]) == 0
    )
    return root


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_tables(tmp_path_factory.mktemp("results"))


def figure_argv(root: Path, run_ids: list[str], outs: list[Path]) -> list[str]:
    return [
        "--runs",
        str(root / "tables/runs.tsv"),
        "--metrics",
        str(root / "tables/metrics.tsv"),
        "--tables",
        str(root / "tables"),
        "--runs-dir",
        str(root / "runs"),
        "--run-ids",
        json.dumps(run_ids),
        "--out",
        *map(str, outs),
    ]


def draw(module: str, root: Path, grids, out: Path, formats=("png", "pdf")) -> list[Path]:
    outs = [out / f"{module}.{fmt}" for fmt in formats]
    argv = figure_argv(root, ids_of(grids), outs)
    assert importlib.import_module(f"rnngeom.plots.{module}").main(argv) == 0
    return outs


@pytest.mark.parametrize("module", sorted(FIGURES))
def test_every_figure_writes_png_and_pdf(module, results, tmp_path):
    for path in draw(module, results, FIGURES[module], tmp_path):
        assert path.exists() and path.stat().st_size > 1000, path


def test_tables_have_the_columns_the_figures_read(results):
    t = results / "tables"
    assert {"ramping_index", "mean_speed", "n_stable", "n_fixed"} <= set(
        pd.read_csv(t / "checkpoints.tsv", sep="\t")
    )
    flow = pd.read_csv(t / "kappa_flow.tsv", sep="\t")
    assert set(flow["arch"]) == {"rank1"} and {"stable", "saddle", "grid"} <= set(flow["kind"])


@pytest.mark.parametrize("module", sorted(FIGURES))
def test_empty_selection_fails_with_a_clear_message(module, results, tmp_path):
    with pytest.raises(SystemExit, match="no runs of this figure's experiment"):
        draw(
            module,
            results,
            {
                "task": ["no_such_task"],
                "arch": ["leaky"],
                "learning_rule": ["bptt"],
                "lambda_tcr": [0.0],
                "gain": [1.0],
                "seed": [0],
            },
            tmp_path,
        )


def test_kappa_flow_needs_rank_one_runs(results, tmp_path):
    with pytest.raises(SystemExit, match="rank-one"):
        draw("kappa_flow", results, ["speedup"], tmp_path)


def test_freeze_in_without_activity_var_column_still_draws(results, tmp_path):
    # metrics from a trainer that did not record activity_var yet: a note in that panel, not a crash
    metrics = pd.read_csv(results / "tables/metrics.tsv", sep="\t").drop(columns="activity_var")
    (tmp_path / "tables").mkdir()
    metrics.to_csv(tmp_path / "tables/metrics.tsv", sep="\t", index=False)
    for name in ("runs", "checkpoints"):
        (tmp_path / f"tables/{name}.tsv").write_bytes((results / f"tables/{name}.tsv").read_bytes())
    for path in draw("freeze_in", tmp_path, ["freeze"], tmp_path, formats=("png",)):
        assert path.stat().st_size > 1000


def test_figure_selects_exactly_the_experiments_runs(tmp_path):
    # Default gains differ by arch (leaky 1.5, LSTM 1.0) and another experiment runs leaky at g = 1.0: a
    # product grid of abrupt_learning's key values would also pick the leaky g = 1 runs (18, not 12).
    config = copy.deepcopy(SELECTION_CONFIG)
    every = sorted({r for name in config["experiments"] for r in experiment_runs(config, name)})
    assert len(every) == 18
    (tmp_path / "tables").mkdir()
    runs = pd.DataFrame([{"run_id": r.run_id, **{k: getattr(r, k) for k in RUN_KEYS}} for r in every])
    runs.to_csv(tmp_path / "tables/runs.tsv", sep="\t", index=False)
    pd.DataFrame({"run_id": runs["run_id"], "iteration": 0}).to_csv(
        tmp_path / "tables/metrics.tsv", sep="\t", index=False
    )
    wanted = sorted({r.run_id for r in experiment_runs(config, "abrupt_learning")})
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(wanted))
    args = parse_args("test", figure_argv(tmp_path, wanted, [tmp_path / "f.png"]))
    selected, metrics = load(args)
    assert sorted(selected["run_id"]) == wanted and len(wanted) == 12 and sorted(metrics["run_id"]) == wanted
    args.run_ids = f"@{ids_file}"  # the same list from a file
    assert sorted(load(args)[0]["run_id"]) == wanted
    args.run_ids = json.dumps({"task": ["flipflop"]})  # a grid is not a run list
    with pytest.raises(SystemExit, match="list of run_id strings"):
        load(args)


def test_phase_animation_has_one_frame_per_checkpoint_and_a_page(results, tmp_path):
    from PIL import Image

    gif, page = draw("phase_animation", results, ["rank1"], tmp_path, formats=("gif", "html"))
    with Image.open(gif) as animation:
        assert animation.n_frames == len(CKPTS)  # every checkpoint of the run's trajectories_pca.npz
    assert "data:image/gif;base64," in page.read_text()
    with pytest.raises(SystemExit, match="writes .gif, .png, .pdf and .html"):
        draw("phase_animation", results, ["rank1"], tmp_path, formats=("svg",))


def c2_folder(root: Path, n_runs: int, edit=None) -> tuple[Path, list[str]]:
    """Simulated C2 runs (rnngeom.claims.sim: a GR event planted before each drop onset) written as the tables
    the figure and the claim table read; ``edit(tables)`` changes them first. Returns (folder, run ids)."""
    from rnngeom.claims.sim import simulated_tables

    sim = simulated_tables(np.random.default_rng(0), n_runs, planted=True)
    runs = sim["runs"].assign(
        task="flipflop",
        arch="leaky",
        learning_rule="bptt",
        lambda_tcr=0.0,
        gain=2.0,
        seed=range(n_runs),
        n_iterations=N_ITER,
        time_to_learn_censored=500.0,
        censored=False,
        learned=True,
        diverged=False,
    )
    tables = {
        "runs": runs,
        "metrics": pd.DataFrame({"run_id": runs["run_id"], "iteration": 0}),
        "checkpoints": sim["checkpoints"],
    }
    if edit is not None:
        edit(tables)
    (root / "tables").mkdir(parents=True)
    for name, df in tables.items():
        df.to_csv(root / f"tables/{name}.tsv", sep="\t", index=False)
    return root, list(runs["run_id"])


def draw_c2(root: Path, ids: list[str], monkeypatch) -> tuple:
    """The gr_vs_drop figure of ``ids`` (also written as PNG), and the claim table's C2 row for those runs."""
    from rnngeom.claims import evaluate_claims
    from rnngeom.claims.table import read_tables
    from rnngeom.plots import gr_vs_drop

    figures, save = [], gr_vs_drop.save
    monkeypatch.setattr(gr_vs_drop, "save", lambda fig, outs: (figures.append(fig), save(fig, outs)))
    png = root / "gr_vs_drop.png"
    assert gr_vs_drop.main(figure_argv(root, ids, [png])) == 0
    assert png.stat().st_size > 1000
    row = evaluate_claims(read_tables(root / "tables"), {"exp": ids}, {"C2": {"experiment": "exp"}})
    return figures[0], row.set_index("claim_id").loc["C2"]


def u_strips(fig) -> tuple[np.ndarray, np.ndarray]:
    """The u values drawn on the right panel: (GR strip, ‖Δθ‖ strip)."""
    from matplotlib.collections import PathCollection

    strips = [c for c in fig.axes[1].collections if isinstance(c, PathCollection)]
    values = [c.get_offsets()[:, 1] for c in strips] + [np.array([]), np.array([])]
    return np.asarray(values[0], float), np.asarray(values[1], float)


def test_gr_vs_drop_shows_the_claim_tables_c2_numbers(tmp_path, monkeypatch):
    from rnngeom.plots.gr_vs_drop import fmt

    root, ids = c2_folder(tmp_path, 20)
    fig, c2 = draw_c2(root, ids, monkeypatch)
    title, panel = fig._suptitle.get_text(), fig.axes[1].get_title()
    assert c2["verdict"] == "supported" and c2["n_runs"] == 20
    assert title.startswith(f"Claim C2, GR precedes the loss drop: {c2['verdict']} (") and "20 runs" in title
    assert (
        f"GR: mean u {fmt(c2['effect'])} [{fmt(c2['ci_low'])}, {fmt(c2['ci_high'])}], "
        f"p = {c2['p_value']:.2g} → {c2['verdict']}" in panel
    )
    assert (
        f"‖Δθ‖: mean u {fmt(c2['control_effect'])} [{fmt(c2['control_ci_low'])}, "
        f"{fmt(c2['control_ci_high'])}], p = {c2['control_p_value']:.2g} → {c2['control_verdict']}" in panel
    )
    assert f"Control, weight motion ‖Δθ‖: {c2['control_verdict']}" in title
    # the per-run difference, as the claim's statistic reports it (3 significant digits there, 2 here)
    stat = re.search(
        r"GR minus control, per run: mean (\S+) \[(\S+), (\S+)\], .* p = ([\d.e-]+)", c2["statistic"]
    )
    shown = re.search(r"GR − ‖Δθ‖ per run: mean (\S+) \[(\S+), (\S+)\], Wilcoxon p = ([\d.e-]+)", panel)
    np.testing.assert_allclose(
        [float(v) for v in shown.groups()], [float(v) for v in stat.groups()], rtol=0.03, atol=6e-3
    )
    # the points are the runs' u: as many as C2's runs, their mean C2's effect
    u_gr, u_motion = u_strips(fig)
    assert len(u_gr) == len(u_motion) == c2["n_runs"]
    assert u_gr.mean() == pytest.approx(c2["effect"]) and u_motion.mean() == pytest.approx(
        c2["control_effect"]
    )
    # the left panel: the planted GR event lies in the pre-onset window, so the GR median peaks there
    gr_median = fig.axes[0].lines[0]
    x, y = gr_median.get_xdata(), gr_median.get_ydata()
    assert -3 < x[np.nanargmax(y)] <= 0


def runs_edit(**changes):
    """An edit of c2_folder's runs table: columns set (a value) or dropped (None)."""

    def edit(tables):
        runs = tables["runs"].drop(columns=[k for k, v in changes.items() if v is None])
        tables["runs"] = runs.assign(**{k: v for k, v in changes.items() if v is not None})

    return edit


def checkpoints_without(column: str):
    def edit(tables):
        tables["checkpoints"] = tables["checkpoints"].drop(columns=column)

    return edit


@pytest.mark.parametrize(
    "case, n_runs, edit, verdict, says",
    [
        ("too few runs", 4, None, "not testable here", "too few for the permutation"),
        ("one run", 1, None, "not testable here", "1 of 1 runs have an abrupt drop"),
        ("no abrupt drop", 10, runs_edit(abrupt=False), "not testable here", "0 of 10 runs"),
        (
            "no weight motion",
            10,
            checkpoints_without("param_change"),
            "not testable here",
            "10 of 10 runs have an abrupt drop, 0 of them",
        ),
        ("no loss-drop columns", 10, runs_edit(t_onset=None, abrupt=None), "not run", "t_onset"),
        ("no GR scores", 10, checkpoints_without("gr_score"), "not run", "GR scores"),
    ],
)
def test_gr_vs_drop_without_a_test_still_draws_and_says_why(
    case, n_runs, edit, verdict, says, tmp_path, monkeypatch
):
    root, ids = c2_folder(tmp_path, n_runs, edit)
    fig, c2 = draw_c2(root, ids, monkeypatch)
    title = fig._suptitle.get_text()
    assert c2["verdict"] == verdict and f"GR precedes the loss drop: {verdict}" in title, case
    assert says in title, (case, title)
    u_gr, _ = u_strips(fig)
    if case == "too few runs":  # the u values are drawn, without a test
        assert len(u_gr) == 4 and "no test" in fig.axes[1].get_title()
    else:
        assert len(u_gr) == 0
