"""The training loop: determinism, resume, divergence handling, outputs, and that it actually learns."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_datasets

from rnngeom.checkpoints import load_checkpoints
from rnngeom.train import checkpoint_schedule, main, train_run


def final_weights(out_dir):
    ck = load_checkpoints(out_dir / "checkpoints.pt")
    return ck.snapshots[ck.iterations[-1]]


def test_checkpoint_schedule_is_dense_early_and_includes_ends():
    s = checkpoint_schedule(1000, dense_until=200, dense_every=50, sparse_every=250)
    assert s == [0, 50, 100, 150, 200, 450, 700, 950, 1000]
    assert checkpoint_schedule(30, 10, 5, 10) == [0, 5, 10, 20, 30]


def test_outputs_and_metric_table(tmp_path, flipflop_data, small_settings):
    out = tmp_path / "run"
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], out)
    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert list(metrics["iteration"]) == list(range(0, 31, 5))
    assert {"task_loss", "tcr_loss", "test_loss", "test_accuracy"} <= set(metrics.columns)
    assert metrics["test_loss"].notna().all() and metrics["tcr_loss"].iloc[1:].gt(0).all()
    ck = load_checkpoints(out / "checkpoints.pt")
    assert ck.iterations == [0, 5, 10, 20, 30]
    assert ck.spec["arch"] == "leaky" and ck.spec["gain"] == 1.5
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == 3 and prov["settings"]["lambda_tcr"] == 0.1
    assert (
        {"torch", "numpy", "python"} <= set(prov["versions"])
        and prov["git_revision"]
        and prov["device"] == "cpu"
        and prov["cpu"]  # the CPU model: results from different machines are told apart
        and prov["bptt_path"].startswith("fast pass")
    )
    from rnngeom.provenance import run_columns

    assert run_columns(prov)["code_path"].startswith("fast pass") and run_columns(prov)["torch_version"]
    assert not (out / "resume.pt").exists()  # removed once the run is complete


def test_same_seed_gives_identical_results(tmp_path, flipflop_data, small_settings):
    for name in ("a", "b"):
        train_run(small_settings, flipflop_data["train"], flipflop_data["test"], tmp_path / name)
    wa, wb = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp_path / "a/metrics.tsv").read_bytes() == (tmp_path / "b/metrics.tsv").read_bytes()
    small_settings["seed"] = 4
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], tmp_path / "c")
    assert not torch.equal(final_weights(tmp_path / "c")["W"], wa["W"])


@pytest.mark.parametrize("arch", ["leaky", "plrnn", "lstm", "rank1"])
@pytest.mark.parametrize("stop_after", [7, 10])  # between checkpoints, and exactly on one
def test_resume_matches_uninterrupted_run(tmp_path, flipflop_data, small_settings, arch, stop_after):
    small_settings["arch"] = arch
    small_settings["model"] = {"n_hidden": 8}
    full, cut = tmp_path / "full", tmp_path / "cut"
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], full)
    stopped = train_run(
        small_settings, flipflop_data["train"], flipflop_data["test"], cut, stop_after=stop_after
    )
    assert (cut / "resume.pt").exists() and not (cut / "metrics.tsv").exists()
    resumed = train_run(small_settings, flipflop_data["train"], flipflop_data["test"], cut)
    assert resumed.resumed_from == max(i for i in stopped.schedule if i <= stop_after)
    wf, wc = final_weights(full), final_weights(cut)
    assert all(torch.equal(wf[k], wc[k]) for k in wf)
    assert (full / "metrics.tsv").read_bytes() == (cut / "metrics.tsv").read_bytes()


@pytest.mark.parametrize("rule", ["rflo", "freeze_in_noise", "freeze_in_control"])
def test_local_rules_are_deterministic_and_resume_exactly(tmp_path, flipflop_data, small_settings, rule):
    """The local rules carry state (feedback matrices, noise generators, the λ controller): a run stopped
    between checkpoints and resumed equals an uninterrupted one, and two runs with one seed are identical."""
    small_settings["learning_rule"] = rule
    small_settings["training"]["freeze_in"] = {"weight_noise_std": 0.05, "target_var": 0.5}  # controller acts
    full, again, cut = tmp_path / "full", tmp_path / "again", tmp_path / "cut"
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], full)
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], again)
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], cut, stop_after=13)
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], cut)
    for other in (again, cut):
        wf, wo = final_weights(full), final_weights(other)
        assert all(torch.equal(wf[k], wo[k]) for k in wf)
        assert (full / "metrics.tsv").read_bytes() == (other / "metrics.tsv").read_bytes()
    metrics = pd.read_csv(full / "metrics.tsv", sep="\t")
    assert metrics["activity_var"].iloc[1:].gt(0).all()
    if rule == "freeze_in_control":  # the controller lowered lambda below its base value
        assert metrics["lambda_tcr_now"].iloc[-1] < small_settings["lambda_tcr"]


def test_resume_ignores_state_of_other_settings(tmp_path, flipflop_data, small_settings):
    out = tmp_path / "run"
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], out, stop_after=12)
    small_settings["lambda_tcr"] = 0.0
    tr = train_run(small_settings, flipflop_data["train"], flipflop_data["test"], out)
    assert tr.resumed_from is None


def test_divergence_is_marked_not_raised(tmp_path, flipflop_data, small_settings):
    small_settings["arch"], small_settings["model"] = "plrnn", {"n_hidden": 8, "a_init": 1.5}
    small_settings["training"].update(optimizer="sgd", lr=1e6, grad_clip=0.0)
    small_settings["gain"] = 5.0
    tr = train_run(small_settings, flipflop_data["train"], flipflop_data["test"], tmp_path / "run")
    metrics = pd.read_csv(tmp_path / "run/metrics.tsv", sep="\t")
    assert tr.diverged and metrics["diverged"].iloc[-1]
    assert json.loads((tmp_path / "run/provenance.json").read_text())["diverged"] is True


@pytest.mark.parametrize("arch", ["leaky", "plrnn", "lstm", "rank1"])
def test_ensemble_members_match_runs_trained_alone(tmp_path, flipflop_data, small_settings, arch):
    """Training several runs of one condition together gives each run the result it gets alone."""
    small_settings["arch"], small_settings["model"] = arch, {"n_hidden": 8}
    members = []
    for seed, lam, gain in ((3, 0.0, 1.5), (4, 0.5, 2.0), (5, 0.1, 1.0)):
        members.append({**copy.deepcopy(small_settings), "seed": seed, "lambda_tcr": lam, "gain": gain})
    dirs = [tmp_path / f"ens{k}" for k in range(3)]
    train_run(members, flipflop_data["train"], flipflop_data["test"], dirs)
    for k in (0, 2):
        alone = tmp_path / f"alone{k}"
        train_run(members[k], flipflop_data["train"], flipflop_data["test"], alone)
        we, wa = final_weights(dirs[k]), final_weights(alone)
        for name in wa:  # float32 rounding of batched matmuls may differ; 30 iterations keep it tiny
            torch.testing.assert_close(we[name], wa[name], rtol=1e-4, atol=1e-5, msg=name)
        me, ma = (pd.read_csv(d / "metrics.tsv", sep="\t") for d in (dirs[k], alone))
        np.testing.assert_allclose(me["test_loss"], ma["test_loss"], rtol=1e-4)
        assert json.loads((dirs[k] / "provenance.json").read_text())["settings"]["seed"] == members[k]["seed"]


def test_ensemble_rejects_members_of_different_conditions(tmp_path, flipflop_data, small_settings):
    other = {**copy.deepcopy(small_settings), "seed": 9}
    other["training"]["lr"] = 0.5
    with pytest.raises(ValueError, match="ensemble members must share"):
        train_run(
            [small_settings, other],
            flipflop_data["train"],
            flipflop_data["test"],
            [tmp_path / "a", tmp_path / "b"],
        )


def test_a_diverged_member_does_not_stop_the_others(tmp_path, flipflop_data, small_settings):
    small_settings["arch"], small_settings["model"] = "plrnn", {"n_hidden": 8, "a_init": 1.5}
    small_settings["training"].update(optimizer="sgd", lr=0.05, grad_clip=0.0)
    bad = {**copy.deepcopy(small_settings), "gain": 50.0, "seed": 1}
    good = {**copy.deepcopy(small_settings), "gain": 0.1, "seed": 2}
    good["model"] = bad["model"] = {"n_hidden": 8, "a_init": 0.5}
    bad["gain"] = 1e4  # explodes within a few steps
    tr = train_run(
        [bad, good], flipflop_data["train"], flipflop_data["test"], [tmp_path / "bad", tmp_path / "good"]
    )
    assert bool(tr.diverged[0]) and not bool(tr.diverged[1])
    good_metrics = pd.read_csv(tmp_path / "good/metrics.tsv", sep="\t")
    assert good_metrics["iteration"].iloc[-1] == 30 and np.isfinite(good_metrics["test_loss"]).all()
    bad_metrics = pd.read_csv(tmp_path / "bad/metrics.tsv", sep="\t")
    assert bad_metrics["diverged"].iloc[-1] and bad_metrics["iteration"].iloc[-1] < 30


def test_cli_reads_settings_inline_or_from_a_file(tmp_path, flipflop_data, small_settings, capsys):
    data = ["--train-data", str(flipflop_data["train"]), "--test-data", str(flipflop_data["test"])]
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(small_settings))
    assert main(["--settings", f"@{path}", *data, "--out-dir", str(tmp_path / "from_file")]) == 0
    assert main(["--settings", json.dumps(small_settings), *data, "--out-dir", str(tmp_path / "inline")]) == 0
    metrics = [(tmp_path / d / "metrics.tsv").read_text() for d in ("from_file", "inline")]
    assert metrics[0] == metrics[1]
    with pytest.raises(SystemExit) as exit_:
        main(["--settings", f"@{tmp_path / 'missing.json'}", *data, "--out-dir", str(tmp_path / "x")])
    assert exit_.value.code == 2 and "--settings: JSON file" in capsys.readouterr().err


def test_unknown_learning_rule_is_rejected(tmp_path, flipflop_data, small_settings):
    small_settings["learning_rule"] = "hebbian"
    with pytest.raises(ValueError, match="unknown learning_rule 'hebbian'"):
        train_run(small_settings, flipflop_data["train"], flipflop_data["test"], tmp_path / "run")


def test_small_flipflop_network_learns(tmp_path):
    """Science smoke test: a small leaky RNN learns the 3-bit flip-flop to high held-out accuracy."""
    data = make_datasets(tmp_path, n_train=512, n_test=128, params={"n_steps": 40, "p_pulse": 0.08})
    settings = {
        "task": "flipflop",
        "arch": "leaky",
        "learning_rule": "bptt",
        "lambda_tcr": 0.0,
        "gain": 1.5,
        "seed": 0,
        "model": {"n_hidden": 32, "alpha": 0.5},
        "training": {
            "optimizer": "adam",
            "lr": 0.01,
            "batch_size": 32,
            "n_iterations": 600,
            "eval_every": 50,
            "grad_clip": 1.0,
            "checkpoints": {"dense_until": 100, "dense_every": 50, "sparse_every": 250},
        },
    }
    train_run(settings, data["train"], data["test"], tmp_path / "run")
    metrics = pd.read_csv(tmp_path / "run/metrics.tsv", sep="\t")
    assert metrics["test_accuracy"].iloc[-1] >= 0.95, metrics.tail()
    assert metrics["test_loss"].iloc[-1] < 0.2 * metrics["test_loss"].iloc[0]
    assert np.isfinite(metrics["test_loss"]).all()


def test_cpu_training_needs_no_deterministic_mode(tmp_path, flipflop_data, small_settings):
    """train_run turns on torch's deterministic algorithms only on CUDA (the call imports the compiler stack,
    seconds per job): on a CPU the same run gives the same bytes with and without it."""
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], tmp_path / "plain")
    assert not torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        train_run(small_settings, flipflop_data["train"], flipflop_data["test"], tmp_path / "det")
    finally:
        torch.use_deterministic_algorithms(False)
    assert (tmp_path / "plain/metrics.tsv").read_bytes() == (tmp_path / "det/metrics.tsv").read_bytes()


def test_a_finished_run_removes_temporaries_left_by_a_killed_predecessor(
    tmp_path, flipflop_data, small_settings
):
    """A SIGKILL during an atomic write leaves its .<name>.*.tmp (nothing can remove it then); the run that
    completes the folder removes those of its own files, and nothing else."""
    out = tmp_path / "run"
    out.mkdir()
    stale = [out / ".resume.pt.k1ll3d.tmp", out / ".metrics.tsv.x.tmp"]
    other = out / ".notes.txt.y.tmp"
    for f in [*stale, other]:
        f.write_bytes(b"half")
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], out)
    assert (out / "metrics.tsv").exists()
    assert not any(f.exists() for f in stale) and other.exists()
