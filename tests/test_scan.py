"""The regime scan (rnngeom.scan): expansion into cells, overrides on a copy, validation, a cell trained as
one ensemble, the table and the figure."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from rnngeom import scan, scan_table
from rnngeom.config import learn_criteria, load_config, run_settings

TINY = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())


@pytest.fixture
def main_config():
    cfg = copy.deepcopy(TINY)
    # long enough for a learning curve the loss-drop detector can fit (>= 6 evaluations)
    cfg["training"].update(n_iterations=60, eval_every=5)
    return load_config(cfg)


def scan_file(**families):
    return {
        "seeds": [1000, 1001],
        "families": families
        or {
            "gain_lambda": {
                "tasks": ["flipflop"],
                "archs": ["leaky", "plrnn"],
                "learning_rule": "bptt",
                "gain": {"leaky": [1.0, 2.0], "plrnn": [0.2]},
                "lambda_tcr": [0.0, 0.3],
            },
            "timing": {
                "tasks": ["flipflop"],
                "archs": ["leaky"],
                "learning_rule": "bptt",
                "vary": {"tasks.flipflop.n_steps": [10, 20]},
                "gain": [2.0],
                "lambda_tcr": [0.0],
            },
            "search": {  # a product of two varied values, one of them a word
                "tasks": ["flipflop"],
                "archs": ["leaky"],
                "learning_rule": "bptt",
                "vary": {"training.optimizer": ["adam", "sgd"], "training.lr": [0.01, 0.1]},
                "gain": [0.8],
                "lambda_tcr": [0.0],
            },
        },
    }


def test_expansion_cells_seeds_and_ids(main_config):
    spec = scan.validate_scan(scan_file(), main_config)
    cells = scan.cells(spec, main_config)
    # gain_lambda: leaky 2 gains x 2 lambdas + plrnn 1 x 2; timing: 2 values x 1 x 1; search: 2 x 2
    assert len(cells) == 4 + 2 + 2 + 4
    assert all(c.seeds == (1000, 1001) for c in cells)
    ids = [c.cell_id for c in cells]
    assert "gain_lambda/flipflop/plrnn/bptt/lam0.3/g0.2" in ids
    assert "timing/flipflop/leaky/bptt/n_steps20/lam0/g2" in ids
    timing = scan.find_cell(spec, main_config, "timing/flipflop/leaky/bptt/n_steps20/lam0/g2")
    assert timing.overrides == (("tasks.flipflop.n_steps", 20),)
    assert [r.seed for r in timing.runs()] == [1000, 1001]
    search = scan.find_cell(spec, main_config, "search/flipflop/leaky/bptt/optimizersgd/lr0.1/lam0/g0.8")
    assert search.overrides == (("training.optimizer", "sgd"), ("training.lr", 0.1))
    with pytest.raises(scan.ScanError, match="cell 'timing/flipflop/leaky/bptt/n_steps30/lam0/g2' is not"):
        scan.find_cell(spec, main_config, "timing/flipflop/leaky/bptt/n_steps30/lam0/g2")
    with pytest.raises(scan.ScanError, match="seeds"):  # the Snakefile's scan targets raise a parse error
        scan.unless_invalid("scan config error at 'seeds': ...", ["results/scan/scan.tsv"])
    assert scan.unless_invalid(None, ["a.tsv"]) == ["a.tsv"]


def test_overrides_apply_on_a_deep_copy(main_config):
    before = copy.deepcopy(main_config)
    varied = scan.apply_overrides(main_config, [("models.leaky.alpha", 0.7), ("training.lr", 0.003)])
    assert main_config == before  # never mutated
    assert varied["models"]["leaky"]["alpha"] == 0.7 and varied["training"]["lr"] == 0.003
    varied["models"]["plrnn"]["gain"] = 9.0  # the copy shares no nested object with the config
    assert main_config["models"]["plrnn"]["gain"] == before["models"]["plrnn"]["gain"]
    settings = run_settings(varied, scan.Cell("f", "flipflop", "leaky", "bptt", (), 1.0, 0.0, (1,)).runs()[0])
    assert settings["model"]["alpha"] == 0.7 and settings["training"]["lr"] == 0.003
    assert scan.effective_values(varied, "flipflop", "leaky", "bptt") == {
        "alpha": 0.7,
        "optimizer": "adam",
        "lr": 0.003,
        "n_steps": 30,
    }
    assert math.isnan(scan.effective_values(varied, "flipflop", "plrnn", "bptt")["alpha"])


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda s: s.update(seed=[1]), "'seed'"),
        (lambda s: s["families"]["gain_lambda"].update(lambdas=[0.0]), "families.gain_lambda.lambdas"),
        (lambda s: s["families"]["gain_lambda"].update(lambda_tcr=[]), "families.gain_lambda.lambda_tcr"),
        (lambda s: s["families"]["gain_lambda"]["gain"].pop("plrnn"), "families.gain_lambda.gain"),
        (lambda s: s["families"]["gain_lambda"].update(archs=["gru"]), "families.gain_lambda.archs"),
        (
            lambda s: s["families"]["timing"].update(vary={"tasks.flipflop.n_step": [10]}),
            "families.timing.vary.tasks.flipflop.n_step",
        ),
        (
            lambda s: s["families"]["timing"].update(vary={"models.plrnn.a_init": [0.5]}),
            "families.timing.vary.models.plrnn.a_init",
        ),
        (
            lambda s: s["families"]["timing"].update(vary={"tasks.flipflop.n_steps": [0]}),
            "families.timing.vary.tasks.flipflop.n_steps",
        ),
        (
            lambda s: s["families"]["search"]["vary"].update({"training.optimizer": ["adam", 3]}),
            "families.search.vary.training.optimizer",
        ),
        (
            lambda s: s["families"]["search"]["vary"].update({"training.optimizer": ["rmsprop"]}),
            "families.search.vary.training.optimizer",
        ),
        (
            lambda s: s["families"]["search"]["vary"].update({"training.per_rule.rflo.momentum": [0.1]}),
            "families.search.vary.training.per_rule.rflo.momentum",
        ),
    ],
)
def test_validation_names_the_bad_key(main_config, edit, key):
    bad = scan_file()
    edit(bad)
    with pytest.raises(scan.ScanError, match=f"at '{key}'" if not key.startswith("'") else key):
        scan.validate_scan(bad, main_config)


def test_exploration_seed_colliding_with_an_experiment_seed_is_named(main_config):
    bad = scan_file()
    bad["seeds"] = [1000, 1]  # tcr_speedup of the tiny config uses seeds 0 and 1
    with pytest.raises(scan.ScanError, match=r"seeds.*\[1\].*experiment 'tcr_speedup'"):
        scan.validate_scan(bad, main_config)


def test_a_training_override_shadowed_by_per_rule_is_refused(main_config):
    cfg = copy.deepcopy(main_config)
    cfg["training"]["per_rule"]["bptt"] = {"lr": 0.05}
    bad = scan_file()
    bad["families"]["timing"]["vary"] = {"training.lr": [0.001]}
    with pytest.raises(scan.ScanError, match="shadowed"):
        scan.validate_scan(bad, cfg)


def test_cell_trains_its_seeds_as_one_ensemble_equal_to_each_alone(main_config, tmp_path):
    spec = scan.validate_scan(scan_file(), main_config)
    cell = scan.find_cell(spec, main_config, "timing/flipflop/leaky/bptt/n_steps20/lam0/g2")
    resolved = scan.resolved_cell(main_config, cell)
    assert scan.cell_from_resolved(json.loads(json.dumps(resolved))) == cell
    curves = scan.cell_curves(resolved, cell, tmp_path / "ensemble")
    assert set(curves["seed"]) == {1000, 1001} and (curves["n_steps"] == 20).all()
    assert (curves["alpha"] == main_config["models"]["leaky"]["alpha"]).all()
    assert (curves["chance_loss"] > 0).all()
    thresholds = learn_criteria(main_config)
    rows = scan_table.run_rows(curves, thresholds)
    assert list(rows.columns[: len(scan_table.COLUMNS)]) == scan_table.COLUMNS
    assert rows["seed"].tolist() == [1000, 1001]
    # a timing override gets its own data: the runs saw 20-step trials
    metrics = pd.read_csv(tmp_path / "ensemble" / cell.cell_id / "seed1000/metrics.tsv", sep="\t")
    assert metrics["iteration"].max() == 60
    assert not (tmp_path / "ensemble" / cell.cell_id / "seed1000/checkpoints.pt").exists()
    # a cell whose runs finished (a job killed after training) is not trained again
    stamp = (tmp_path / "ensemble" / cell.cell_id / "seed1000/metrics.tsv").stat().st_mtime_ns
    pd.testing.assert_frame_equal(scan.cell_curves(resolved, cell, tmp_path / "ensemble"), curves)
    assert (tmp_path / "ensemble" / cell.cell_id / "seed1000/metrics.tsv").stat().st_mtime_ns == stamp
    alone_cell = scan.Cell(**{**cell.__dict__, "seeds": (1001,)})
    alone = scan_table.run_rows(
        scan.cell_curves(scan.resolved_cell(main_config, alone_cell), alone_cell, tmp_path / "alone"),
        thresholds,
    )
    together = rows[rows["seed"] == 1001].reset_index(drop=True)
    numeric = ["final_accuracy", "best_accuracy", "time_to_learn_censored", "final_loss"]
    np.testing.assert_allclose(together[numeric], alone[numeric], rtol=1e-4, atol=1e-4)
    exact = ["learned", "censored", "diverged", "n_iterations", "eval_every"]
    pd.testing.assert_frame_equal(together[exact], alone[exact])
    # the two seeds are different runs (the comparison above is not of identical copies)
    assert rows["final_accuracy"].iloc[0] != rows["final_accuracy"].iloc[1]
    # resolved settings that are not the cell's are refused
    with pytest.raises(scan.ScanError, match="seeds differ"):
        scan.cell_curves(resolved, alone_cell, tmp_path / "x")


def test_a_cell_depends_on_its_own_settings_only(main_config):
    """The cell job's params are its resolved settings: an edit of another task's parameters, of an
    experiment or of the drop detector leaves them unchanged (no retraining); an edit of its own task does
    not."""
    spec = scan.validate_scan(scan_file(), main_config)
    cell = scan.find_cell(spec, main_config, "gain_lambda/flipflop/leaky/bptt/lam0/g1")
    before = scan.resolved_cell(main_config, cell)
    other = copy.deepcopy(main_config)
    other["tasks"]["delayed_addition"] = {"n_steps": 12}
    other["loss_drop"] = {"min_plateau_evals": 3}
    other["experiments"]["tcr_speedup"]["seeds"] = [0, 1, 2]
    other["training"]["checkpoints"] = {"dense_until": 10, "dense_every": 5, "sparse_every": 10}  # not kept
    assert scan.resolved_cell(other, cell) == before
    other["tasks"]["flipflop"]["p_pulse"] = 0.2
    assert scan.resolved_cell(other, cell) != before
    from rnngeom.deps import job_source_files

    files = {f.split("rnngeom/")[-1] for f in job_source_files("rnngeom.scan", *cell.job_choice())}
    assert "scan.py" in files and "train.py" in files
    assert (
        not {"aggregate.py", "scan_table.py", "analysis/loss_drop.py"} & files
    )  # the table's, not the cell's


def synthetic_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    grids = (
        ("gain_lambda", ["leaky", "rank1"], [0.0, 0.3, 1.0], [1.0], ["adam"]),
        ("alpha", ["leaky"], [0.0, 0.3], [0.5, 1.0], ["adam"]),
        ("search", ["leaky"], [0.0], [1.0], ["adam", "sgd"]),
    )
    for family, archs, lams, alphas, optimizers in grids:
        for arch, gain, lam, alpha, optimizer, seed in np.broadcast(
            *np.meshgrid(archs, [1.0, 2.0, 3.0], lams, alphas, optimizers, [1000, 1001, 1002])
        ):
            learned = rng.random() < 0.7
            ttl = float(rng.integers(2, 40) * 50) if learned else math.nan
            cell = f"{family}/flipflop/{arch}/bptt/alpha{alpha}/optimizer{optimizer}/lam{lam}/g{gain}"
            rows.append(
                dict.fromkeys(scan_table.COLUMNS, 0.0)
                | {
                    "family": family,
                    "cell": cell,
                    "task": "flipflop",
                    "arch": str(arch),
                    "learning_rule": "bptt",
                    "alpha": float(alpha),
                    "optimizer": str(optimizer),
                    "gain": float(gain),
                    "lambda_tcr": float(lam),
                    "seed": int(seed),
                    "n_iterations": 2000,
                    "eval_every": 50,
                    "learned": learned,
                    "time_to_learn": ttl,
                    "time_to_learn_censored": ttl if learned else 2050,
                    "escaped": learned,
                    "abrupt": bool(learned and rng.random() < 0.4),
                    "plateau_length": rng.random() * 1000 if learned else math.nan,
                    "width_over_plateau": rng.random() * 0.5 if learned else math.nan,
                }
            )
    return pd.DataFrame(rows)


def test_table_rows_come_from_the_cells_curves(main_config, tmp_path):
    """Each run's row: its times by aggregate's run_summary and its drop by detect_in_metrics against its
    chance loss, from the curves alone (a curve planted with a plateau, then a drop)."""
    its = np.arange(0, 3001, 50)
    loss = np.where(its < 2000, 0.167, 0.002)
    curve = pd.DataFrame(
        {
            "iteration": its,
            "task_loss": loss,
            "tcr_loss": 0.0,
            "test_loss": loss,
            "test_accuracy": np.where(its < 2100, 0.1, 0.95),
            "diverged": False,
        }
    ).assign(
        family="f",
        cell="f/flipflop/leaky/bptt/lam0/g1",
        task="flipflop",
        arch="leaky",
        learning_rule="bptt",
        gain=1.0,
        lambda_tcr=0.0,
        seed=1000,
        alpha=1.0,
        optimizer="adam",
        lr=0.001,
        n_steps=50,
        n_iterations=3000,
        run_diverged=False,
        chance_loss=1 / 6,
        wall_seconds=1.0,
    )
    path = tmp_path / "cell.tsv"
    curve.to_csv(path, sep="\t", index=False)
    table = scan_table.concat_cells([path], {"flipflop": 0.9})
    row = table.iloc[0]
    assert row["learned"] and row["time_to_learn"] == 2100 and row["escaped"] and row["abrupt"]
    assert 1950 < row["t_drop"] <= 2000 and row["search_fraction"] > 0.9
    (tmp_path / "bad.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(scan.ScanError, match="columns missing"):
        scan_table.concat_cells([path, tmp_path / "bad.tsv"], {"flipflop": 0.9})
    with pytest.raises(scan.ScanError, match="no learn criterion"):
        scan_table.concat_cells([path], {"delayed_addition": 0.9})


@pytest.mark.parametrize(
    "family, vary", [("gain_lambda", ""), ("alpha", "alpha"), ("search", "optimizer,alpha")]
)
def test_figure_draws_a_synthetic_table(tmp_path, family, vary):
    from rnngeom.plots import scan_maps

    table = tmp_path / "scan.tsv"
    synthetic_table().to_csv(table, sep="\t", index=False)
    out = [str(tmp_path / f"{family}.png"), str(tmp_path / f"{family}.pdf")]
    assert scan_maps.main(["--table", str(table), "--family", family, "--vary", vary, "--out", *out]) == 0
    assert all((tmp_path / f"{family}.{ext}").stat().st_size > 1000 for ext in ("png", "pdf"))
    stats = scan_maps.tcr_effect(
        scan_maps.cell_stats(synthetic_table(), ["arch", "gain", "lambda_tcr"]), "gain", "lambda_tcr"
    )
    assert np.allclose(stats.loc[stats["lambda_tcr"] == 0.0, "log2_ratio"], 0.0)
    # a never-escaped run counts its whole run as plateau (a lower bound of its search)
    runs = synthetic_table()
    one = runs[runs["cell"] == runs["cell"].iloc[0]].assign(escaped=False, learned=False)
    assert scan_maps.cell_stats(one, ["cell"])["plateau"].iloc[0] == 2000


@pytest.mark.parametrize(
    "main, scan_path", [("config.yaml", "config/scan.yaml"), ("config/paper.yaml", "config/scan.yaml")]
)
def test_shipped_scan_files_are_valid_for_their_main_config(main, scan_path):
    config = scan.load_main_config(str(ROOT / main))
    cells = scan.cells(scan.read_scan(ROOT / scan_path, config), config)
    # the staged design: every architecture and task searched at lambda 0, lambda > 0 (small values
    # included) where a search phase may exist, and the local rule
    assert {c.arch for c in cells if c.lambda_tcr == 0.0} == {"leaky", "rank1", "plrnn", "lstm"}
    assert {c.task for c in cells} == {"flipflop", "delayed_addition", "evidence_accumulation"}
    assert min(c.lambda_tcr for c in cells if c.lambda_tcr > 0) <= 0.01
    assert {c.learning_rule for c in cells} == {"bptt", "rflo"}
    # a cell's table columns never repeat a column its curves hold per run (pandas refuses a second value)
    recorded = set(scan.CURVE_ID_COLUMNS + scan.CURVE_RUN_COLUMNS)
    assert all(not set(scan.resolved_cell(config, c)["columns"]) & recorded for c in cells)
    assert any(c.overrides for c in cells)  # families vary settings beyond the grid's axes
