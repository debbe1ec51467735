"""End-to-end: the Snakemake pipeline on the tiny config, lint, the paper config's DAG, incremental re-runs.

The workflow is copied into a temporary folder so that the incremental tests can edit source files
without touching the checkout.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT
from PIL import Image
from pipeline_helpers import TINY, copy_workflow, edited, planned_job_details, planned_jobs, snakemake

from rnngeom.config import analysis_levels, experiment_run_ids, load_config, read_config, run_blocks

TINY_CONFIG = load_config(yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text()))

pytestmark = pytest.mark.slow


def tiny_blocks(where=None):
    """The tiny config's seed blocks {block: [Run]}, those whose first run satisfies ``where`` if given."""
    blocks = run_blocks(TINY_CONFIG)
    return {b: runs for b, runs in blocks.items() if where is None or where(runs[0])}


FIGURES = (
    "loss_curves",
    "tcr_speedup",
    "gr_timeline",
    "gr_vs_drop",
    "phase_portraits",
    "phase_animation",
    "kappa_flow",
    "attractor_count",
    "gain_sweep",
    "slow_dynamics",
    "local_learning",
    "freeze_in",
)


def test_tiny_pipeline_produces_tables_and_figures(tiny_run):
    runs = pd.read_csv(tiny_run / "results/tables/runs.tsv", sep="\t")
    assert len(runs) == 15 and runs["run_id"].is_unique
    assert set(runs["learning_rule"]) == {"bptt", "rflo", "freeze_in", "freeze_in_noise", "freeze_in_control"}
    assert {
        "task",
        "arch",
        "learning_rule",
        "lambda_tcr",
        "gain",
        "seed",
        "final_test_accuracy",
        "time_to_learn",
        "learned",
        "diverged",
    } <= set(runs.columns)
    metrics = pd.read_csv(tiny_run / "results/tables/metrics.tsv", sep="\t")
    assert set(metrics["run_id"]) == set(runs["run_id"])
    for fig in FIGURES:  # every figure rule, one per claim family, runs on the tiny config
        for ext in ("png", "pdf"):
            assert (tiny_run / f"results/figures/{fig}.{ext}").stat().st_size > 5000
    with Image.open(tiny_run / "results/figures/phase_animation.gif") as gif:  # one frame per checkpoint
        runs_ids = experiment_run_ids(TINY_CONFIG, "tcr_speedup")
        with np.load(tiny_run / "results/runs" / runs_ids[0] / "analysis/trajectories_pca.npz") as z:
            assert gif.n_frames == len(z["iterations"]) > 1
    assert "data:image/gif;base64," in (tiny_run / "results/figures/phase_animation.html").read_text()
    checkpoints = pd.read_csv(tiny_run / "results/tables/checkpoints.tsv", sep="\t")
    assert set(checkpoints["run_id"]) == set(runs["run_id"]) and {"n_stable", "gr_score"} <= set(
        checkpoints.columns
    )
    points = pd.read_csv(tiny_run / "results/tables/fixed_points.tsv", sep="\t")
    assert {"run_id", "iteration", "pc1", "pc2", "kind"} <= set(points.columns) and len(points) > 0
    assert {"t_drop", "t_onset", "abrupt", "escaped", "search_fraction", "t_GR", "gr_noise_floor"} <= set(
        runs.columns
    )
    for run_id in runs["run_id"]:
        assert (
            tiny_run / "results/runs" / run_id / "analysis/events.tsv"
        ).exists()  # fixed name, maybe empty
    # one training and one analysis job per seed block; its manifest lists its runs, every run exactly once
    blocks = tiny_blocks()
    assert len(blocks) < len(runs)  # tcr_speedup's two seeds per condition share a job
    for stage, rule in (("train", "train"), ("analysis", "analyze")):
        listed = []
        for block, block_runs in blocks.items():
            manifest = json.loads((tiny_run / "results/runs" / f"{block}.{stage}.json").read_text())
            assert [r["run_id"] for r in manifest["runs"]] == [r.run_id for r in block_runs]
            listed += [r["run_id"] for r in manifest["runs"]]
            assert (tiny_run / f"results/logs/{rule}" / f"{block}.log").exists()
            assert (tiny_run / f"results/benchmarks/{rule}" / f"{block}.tsv").exists()
        assert sorted(listed) == sorted(runs["run_id"])
    # analysis levels: tcr_speedup (full) has GR and counts at every checkpoint, the others final counts only
    full = runs["run_id"].map(analysis_levels(TINY_CONFIG)).eq("full")
    full_ids = set(runs.loc[full, "run_id"])
    assert full_ids == set(experiment_run_ids(TINY_CONFIG, "tcr_speedup"))
    assert runs.loc[full, "gr_threshold"].notna().all() and runs.loc[~full, "gr_threshold"].isna().all()
    assert runs["n_stable_final"].notna().all()
    counted = checkpoints.groupby("run_id")["n_stable"].count()
    sizes = checkpoints.groupby("run_id").size()
    expected = {r: n if r in full_ids else 1 for r, n in sizes.items()}  # final level: last checkpoint only
    assert counted.to_dict() == expected
    assert checkpoints["mean_speed"].notna().all() and checkpoints["ramping_index"].notna().all()
    assert planned_jobs(tiny_run, *TINY) == {}  # complete: nothing left to do


def test_claim_table_has_every_claim_and_reports_missing_experiments(tiny_run):
    claims = pd.read_csv(tiny_run / "results/claims.tsv", sep="\t")
    assert list(claims["claim_id"]) == [f"C{i}" for i in range(1, 12)]
    assert set(claims["verdict"]) <= {
        "supported",
        "not supported",
        "inconclusive",
        "not testable here",
        "not run",
    }
    verdict = dict(zip(claims["claim_id"], claims["verdict"]))
    assert verdict["C7"] == "not run"  # the tiny config has no LSTM experiment: said, not dropped
    assert verdict["C3"] != "not run" and verdict["C11"] != "not run"
    assert "| C1 |" in (tiny_run / "results/claims.md").read_text()


def test_html_report_builds(tiny_run):
    report = tiny_run / "results/report.html"
    # a regime map where a scan was run: shown on the front page
    scan_map = tiny_run / "results/scan/figures/some_family.png"
    scan_map.parent.mkdir(parents=True)
    scan_map.write_bytes((tiny_run / "results/figures/loss_curves.png").read_bytes())
    try:
        snakemake(tiny_run, "--report", str(report), *TINY)
    finally:
        shutil.rmtree(tiny_run / "results/scan")
    html = report.read_text(errors="replace")
    assert report.stat().st_size > 100_000
    for text in ("claims.tsv", "freeze_in.png", "Tests claim(s) C11", "phase_animation.html"):
        assert text in html, text
    # the menu sorts categories as text: zero-padded claim ids keep C1 ... C11 in order
    assert "Claims C03, C10" in html and "Claims C3" not in html
    # the front page: the formula rendered, the verdict column of the claim table, the scan's map
    assert "<i>r</i><sub><i>t</i>" in html and "r_{t+1}" not in html
    claims = pd.read_csv(tiny_run / "results/claims.tsv", sep="\t")
    front = html.split("Verdicts at a glance", 1)[1].split("Each figure is filed", 1)[0]
    for claim_id, verdict in zip(claims["claim_id"], claims["verdict"]):
        assert f"<td>{claim_id}</td>" in front and f"<strong>{verdict}</strong>" in front, claim_id
    assert "<summary>some_family</summary>" in front and "data:image/png;base64," in front


def test_editing_plot_code_replans_only_figures(tiny_run):
    with edited(tiny_run / "src/rnngeom/plots/tcr_speedup.py"):
        assert planned_jobs(tiny_run, *TINY) == {"figure": 2, "all": 1}  # tcr_speedup draws two figures


def test_editing_a_model_file_retrains_its_blocks(tiny_run):
    with edited(tiny_run / "src/rnngeom/models/plrnn.py"):
        plan = planned_jobs(tiny_run, *TINY)
    n_plrnn = len(tiny_blocks(lambda r: r.arch == "plrnn"))
    assert n_plrnn == 2 and plan["train"] == plan["analyze"] == n_plrnn  # the PLRNN blocks only
    with edited(tiny_run / "src/rnngeom/learning/rflo.py"):
        plan = planned_jobs(tiny_run, *TINY)
    # RFLO blocks and the freeze-in blocks built on RFLO, no BPTT block
    assert plan["train"] == len(tiny_blocks(lambda r: r.learning_rule != "bptt")) == 5
    assert plan.get("make_dataset", 0) == 0


def test_editing_a_task_file_replans_only_its_datasets_and_blocks(tiny_run):
    n_flipflop = len(tiny_blocks(lambda r: r.task == "flipflop"))
    assert 0 < n_flipflop < len(tiny_blocks())
    with edited(tiny_run / "src/rnngeom/tasks/flipflop.py"):
        plan = planned_jobs(tiny_run, *TINY)
    assert plan["make_dataset"] == 2 and plan["train"] == plan["analyze"] == n_flipflop, plan


def test_editing_the_plrnn_solver_reanalyses_only_plrnn_runs(tiny_run):
    with edited(tiny_run / "src/rnngeom/analysis/plrnn_exact.py"):
        plan = planned_jobs(tiny_run, *TINY)
    assert "train" not in plan and "make_dataset" not in plan
    assert plan["analyze"] == 2, plan  # the two PLRNN blocks


def test_editing_the_lstm_retrains_and_reanalyses_only_lstm_runs(tiny_run):
    with edited(tiny_run / "src/rnngeom/models/lstm.py"):
        plan = planned_jobs(tiny_run, *TINY)
    assert plan["train"] == 1 and plan["analyze"] == 1 and "make_dataset" not in plan, plan


@pytest.mark.parametrize("device,gpus", [("cuda", "1"), ("auto", "0")])
def test_device_reaches_training_and_analysis_and_cuda_requests_one_gpu_each(tmp_path, device, gpus):
    """No GPU needed: the planned jobs' shell commands and resources. cuda: every train and analyze job
    computes on the GPU and requests one; auto: they use a GPU where torch sees one, requesting none."""
    wd = copy_workflow(tmp_path)
    cfg = (wd / "tests/configs/tiny.yaml").read_text()
    assert cfg.count("device: cpu\n") == 1
    (wd / "tests/configs/dev.yaml").write_text(cfg.replace("device: cpu\n", f"device: {device}\n"))
    jobs = planned_job_details(wd, "--configfile", "tests/configs/dev.yaml")
    by_rule = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)
    assert len(by_rule["train"]) == len(by_rule["analyze"]) == len(tiny_blocks()) == 13
    for job in by_rule["train"] + by_rule["analyze"]:
        assert job["resources"].get("gpu") == gpus and f"--device {device} " in job["shell"], job
    others = [job for job in jobs if job["rule"] not in ("train", "analyze")]
    assert {job["rule"] for job in others} == {
        "make_dataset",
        "baselines",
        "aggregate",
        "claims",
        "figure",
        "figure_animation",
        "all",
    }
    for job in others:
        assert job["resources"].get("gpu", "0") == "0" and "--device" not in job["shell"], job


def test_editing_analysis_code_never_retrains(tiny_run):
    with edited(tiny_run / "src/rnngeom/analysis/gr_events.py"):
        plan = planned_jobs(tiny_run, *TINY)
    assert "train" not in plan and plan["analyze"] == len(tiny_blocks()), plan


def test_adding_a_lambda_or_seeds_in_a_new_block_plans_only_the_new_blocks(tiny_run):
    cfg = (tiny_run / "tests/configs/tiny.yaml").read_text()
    block = "lambda_tcr: [0.0, 0.5]\n    gain: [2.0]\n    seeds: [0, 1]"  # the tcr_speedup experiment
    assert cfg.count(block) == 1 and "seed_block: 2 " in cfg
    more_lambda = cfg.replace(block, block.replace("[0.0, 0.5]", "[0.0, 0.5, 1.0]"))
    more_seeds = cfg.replace(block, block.replace("[0, 1]", "[0, 1, 2, 3]"))
    # lambda 1: one new block (seeds 0, 1); seeds 2, 3: block 1 of each of the two lambdas
    for text, n_new in ((more_lambda, 1), (more_seeds, 2)):
        assert text != cfg
        alt = tiny_run / "tests/configs/alt.yaml"
        alt.write_text(text)
        plan = planned_jobs(tiny_run, "--configfile", str(alt))
        assert plan["train"] == plan["analyze"] == n_new and plan.get("make_dataset", 0) == 0, plan


def test_switching_an_experiments_analysis_level_reanalyses_only_its_blocks(tiny_run):
    alt = tiny_run / "tests/configs/alt.yaml"
    cfg = (tiny_run / "tests/configs/tiny.yaml").read_text()
    level = "lambda_tcr: [0.0]\n    seeds: [0]\n    analysis: final"  # abrupt_learning, rank_one, lstm
    assert cfg.count(level) == 3
    alt.write_text(cfg.replace(level, level.replace("final", "full"), 1))  # abrupt_learning only
    plan = planned_jobs(tiny_run, "--configfile", str(alt))
    abrupt = set(experiment_run_ids(TINY_CONFIG, "abrupt_learning"))
    n_abrupt = len(tiny_blocks(lambda r: r.run_id in abrupt))
    assert n_abrupt == 4 and "train" not in plan and plan["analyze"] == n_abrupt, plan


def test_changing_accuracy_threshold_does_not_retrain(tiny_run):
    alt = tiny_run / "tests/configs/alt.yaml"
    alt.write_text(
        (tiny_run / "tests/configs/tiny.yaml")
        .read_text()
        .replace("accuracy_threshold: 0.6", "accuracy_threshold: 0.7")
    )
    plan = planned_jobs(tiny_run, "--configfile", str(alt))
    assert "train" not in plan and "analyze" not in plan and plan["aggregate"] == 1
    assert plan["claims"] == 1


def test_bad_config_fails_before_any_job(tiny_run):
    before = (tiny_run / "results/tables/runs.tsv").stat().st_mtime_ns
    alt = tiny_run / "tests/configs/bad.yaml"
    alt.write_text((tiny_run / "tests/configs/tiny.yaml").read_text().replace("lr: 0.01", "lr: -0.01"))
    proc = snakemake(tiny_run, "--cores", "1", "--configfile", str(alt), check=False)
    assert proc.returncode != 0
    assert "training.lr" in proc.stdout + proc.stderr
    assert "Select jobs to execute" not in proc.stdout + proc.stderr
    assert (tiny_run / "results/tables/runs.tsv").stat().st_mtime_ns == before  # nothing touched


def test_unwritable_results_path_fails_before_any_job(tmp_path):
    wd = copy_workflow(tmp_path)
    (wd / "results").write_text("a file where the results folder should be")
    proc = snakemake(wd, "-n", *TINY, check=False)
    assert proc.returncode != 0 and "results path" in proc.stdout + proc.stderr
    assert "not a directory" in proc.stdout + proc.stderr


def test_lint_is_clean():
    proc = snakemake(ROOT, "--lint")
    assert "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_a_one_key_configfile_overlays_the_default(tmp_path):
    """snakemake --configfile my.yaml with one key: the default reproduction at that value (config.yaml
    merged under it), the same jobs."""
    wd = copy_workflow(tmp_path)
    (wd / "my.yaml").write_text("training: {lr: 0.003}\n")
    default, overlaid = planned_jobs(wd), planned_jobs(wd, "--configfile", "my.yaml")
    assert overlaid == default and overlaid["train"] > 0


def test_paper_config_dag_resolves(tmp_path):
    wd = copy_workflow(tmp_path)
    plan = planned_jobs(wd, "--configfile", "config/paper.yaml")
    blocks = run_blocks(load_config(read_config(ROOT / "config/paper.yaml")))
    assert sum(map(len, blocks.values())) >= 400  # runs
    assert plan["train"] == plan["analyze"] == len(blocks) and plan["make_dataset"] == 6
