"""End to end: `snakemake analyse_external --config external=FOLDER` on a folder of a GRU trained in the test
(its tables, figures, animation and report section), not part of `all`, and bad folders stopped before any
job with one line naming the file and the key."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml
from PIL import Image
from pipeline_helpers import TINY, copy_workflow, planned_jobs, snakemake
from test_external import make_folder, train_flipflop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("wf"))
    trained = {}

    def get(kind):
        trained.setdefault(kind, train_flipflop(kind))
        return trained[kind]

    return wd, make_folder(wd / "my_gru", get)


def external(folder) -> list[str]:
    return [*TINY, "--config", f"external={folder}"]


def test_the_rule_analyses_a_folder_with_figures_animation_and_report(workflow):
    wd, folder = workflow
    snakemake(wd, "--cores", "1", "analyse_external", *external(folder))
    out = wd / "results/external/gru_fixture"
    runs = pd.read_csv(out / "tables/runs.tsv", sep="\t")
    assert runs["run_id"].tolist() == ["gru_fixture"] and runs["n_stable_final"].notna().all()
    for name in ("checkpoints", "fixed_points", "events", "metrics", "kappa_flow"):
        assert (out / f"tables/{name}.tsv").is_file(), name
    for name in ("gr_timeline", "phase_portraits", "phase_animation"):
        for ext in ("png", "pdf"):
            assert (out / f"figures/{name}.{ext}").stat().st_size > 5000, name
    with Image.open(out / "figures/phase_animation.gif") as gif:
        assert gif.n_frames == 5  # one per checkpoint of the folder
    for job in ("analysis", "gr_timeline", "phase_portraits", "phase_animation"):
        assert (out / f"logs/{job}.log").is_file() and (out / f"benchmarks/{job}.tsv").is_file()
    assert planned_jobs(wd, "analyse_external", *external(folder)) == {}  # complete
    # not part of `all`: the default target plans no external job even with the folder given
    assert not any(rule.startswith("external") for rule in planned_jobs(wd, *external(folder)))
    report = out / "report.html"
    snakemake(wd, "--report", str(report), "analyse_external", *external(folder))
    html = report.read_text(errors="replace")
    for text in ("External network: gru_fixture", "phase_animation.html", "phase_animation (animation)"):
        assert text in html, text


@pytest.mark.parametrize(
    "change,needle",
    [
        (lambda m: m["model"].update(kind="transformer"), "manifest error at 'model.kind'"),
        (lambda m: m["model"].update(hidden_size=8), "step_0.pt (iteration 0): 'rnn.weight_ih_l0' has shape"),
        (lambda m: m.update(checkpoints="ckpt/none_{iteration}.pt"), "manifest error at 'checkpoints'"),
    ],
    ids=["model.kind", "a shape", "checkpoints"],
)
def test_a_bad_folder_stops_before_any_job_naming_the_key(workflow, tmp_path, change, needle):
    wd, folder = workflow
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    manifest = yaml.safe_load((bad / "manifest.yaml").read_text())
    change(manifest)
    (bad / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    proc = snakemake(wd, "--cores", "1", "analyse_external", *external(bad), check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and needle in text, text[-3000:]
    assert "Select jobs to execute" not in text


def test_the_target_without_a_folder_says_which_key_is_missing(workflow):
    wd, _ = workflow
    proc = snakemake(wd, "-n", "analyse_external", *TINY, check=False)
    assert proc.returncode != 0 and "--config external=FOLDER" in proc.stdout + proc.stderr
