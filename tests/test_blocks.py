"""Seed blocks: which runs share a job, that a run's result does not depend on its block, block resume,
the block manifests, and the analysis levels."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT

from rnngeom import train_block
from rnngeom.blocks import manifest
from rnngeom.checkpoints import read_checkpoint_payload
from rnngeom.config import (
    ConfigError,
    all_runs,
    analysis_levels,
    analysis_settings,
    load_config,
    run_blocks,
    run_settings,
)
from rnngeom.train import train_run


@pytest.fixture(scope="module")
def default_config():
    return load_config(yaml.safe_load((ROOT / "config.yaml").read_text()))


def test_every_run_of_the_grid_lands_in_exactly_one_block(default_config):
    blocks = run_blocks(default_config)
    placed = [run.run_id for runs in blocks.values() for run in runs]
    assert sorted(placed) == sorted(r.run_id for r in all_runs(default_config))
    assert len(placed) == len(set(placed))
    size = default_config["training"]["seed_block"]
    for block, runs in blocks.items():
        condition, index = block.rsplit("/block", 1)
        assert {r.condition for r in runs} == {condition}  # one task, arch, rule, lambda_tcr and gain
        assert {r.seed // size for r in runs} == {int(index)}
        assert len(runs) <= size and [r.seed for r in runs] == sorted(r.seed for r in runs)
    assert len(blocks) < len(placed)  # the default grid really shares jobs


def test_adding_seeds_in_a_new_block_leaves_the_other_blocks_as_they_were(default_config):
    cfg = copy.deepcopy(default_config)
    before = run_blocks(cfg)
    seeds = cfg["experiments"]["tcr_speedup"]["seeds"]
    size = cfg["training"]["seed_block"]
    first_new = (max(seeds) // size + 1) * size
    cfg["experiments"]["tcr_speedup"]["seeds"] = seeds + [first_new, first_new + 1]
    after = run_blocks(cfg)
    assert {b: after[b] for b in before} == before
    new = set(after) - set(before)
    assert len(new) == len(cfg["experiments"]["tcr_speedup"]["lambda_tcr"])
    assert all(b.endswith(f"/block{first_new // size}") for b in new)


def test_seed_block_is_validated_and_not_part_of_the_run_settings(default_config):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["training"]["seed_block"] = 0
    with pytest.raises(ConfigError, match="training.seed_block"):
        load_config(raw)
    cfg = copy.deepcopy(default_config)
    run = all_runs(cfg)[0]
    settings = run_settings(cfg, run)
    cfg["training"]["seed_block"] = 1
    assert run_settings(cfg, run) == settings and "seed_block" not in settings["training"]
    assert len(run_blocks(cfg)) == len(all_runs(cfg))  # 1 = one job per run


def test_a_run_gets_the_fullest_analysis_level_of_its_experiments(default_config):
    levels = analysis_levels(default_config)
    assert set(levels) == {r.run_id for r in all_runs(default_config)}
    # gain_sweep (final) shares its g = 2.5 runs with attractors (full); its g = 1 runs are its own
    assert levels["flipflop/leaky/bptt/lam3/g2.5/seed208"] == "full"
    assert levels["flipflop/leaky/bptt/lam3/g1/seed208"] == "final"
    assert analysis_settings(default_config, "full")["fixed_points_at"] == "all"
    assert analysis_settings(default_config, "final")["fixed_points_at"] == "final"


def test_the_analysis_level_is_set_per_experiment_only(default_config):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["analysis"]["fixed_points_at"] = "final"
    with pytest.raises(ConfigError, match="analysis.fixed_points_at"):
        load_config(raw)
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["experiments"]["tcr_speedup"]["analysis"] = "some"
    with pytest.raises(ConfigError, match="experiments.tcr_speedup.analysis"):
        load_config(raw)
    del raw["experiments"]["tcr_speedup"]["analysis"]
    assert load_config(raw)["experiments"]["tcr_speedup"]["analysis"] == "full"  # the default


def _block_cli(flipflop_data, members, dirs, manifest_path, **kw):
    return train_block.main(
        [
            "--settings",
            json.dumps(members),
            "--train-data",
            str(flipflop_data["train"]),
            "--test-data",
            str(flipflop_data["test"]),
            "--out-dir",
            *map(str, dirs),
            "--manifest",
            str(manifest_path),
            *(["--one-by-one"] if kw.get("one_by_one") else []),
        ]
    )


def _same_run(ours, ref):
    """The same metrics bytes and the same checkpoint tensors (checkpoints.pt's bytes hold the name of its
    temporary file: io.atomic_path)."""
    assert (ours / "metrics.tsv").read_bytes() == (ref / "metrics.tsv").read_bytes()
    a, b = (read_checkpoint_payload(d / "checkpoints.pt") for d in (ours, ref))
    assert a["run"] == b["run"] and a["snapshots"].keys() == b["snapshots"].keys()
    for it, state in b["snapshots"].items():
        for name, value in state.items():
            assert torch.equal(a["snapshots"][it][name], value), (it, name)


@pytest.mark.parametrize("arch", ["leaky", "plrnn", "rank1", "lstm"])
def test_a_block_is_one_ensemble_reproducible_and_close_to_its_runs_alone(
    tmp_path, flipflop_data, small_settings, arch
):
    """Seeds 4-9 as one block train as one ensemble (the fast pass computes all six in each batched
    product), with gradient clipping active at every step: the same block again gives the same bytes, and
    each run stays close to the run trained alone (a batched product may round a member differently for
    another K; docs/pipeline.md)."""
    small_settings["arch"], small_settings["model"] = arch, {"n_hidden": 9}
    small_settings["training"]["grad_clip"] = 0.05
    seeds = (4, 5, 6, 7, 8, 9)
    members = [{**copy.deepcopy(small_settings), "seed": s} for s in seeds]
    dirs, again = ([tmp_path / f"{how}/block/seed{s}" for s in seeds] for how in ("runs", "again"))
    assert _block_cli(flipflop_data, members, dirs, tmp_path / "runs/block0.train.json") == 0
    assert _block_cli(flipflop_data, members, again, tmp_path / "again/block0.train.json") == 0
    provenance = json.loads((dirs[1] / "provenance.json").read_text())
    assert provenance["ensemble_size"] == 6 and provenance["bptt_path"].startswith("fast pass")
    for ours, ref in zip(dirs, again):
        _same_run(ours, ref)
    for k in (1, 5):
        alone = tmp_path / f"alone/seed{seeds[k]}"
        alone_settings = {**members[k], "device": "cpu", "threads": 1}  # what rnngeom.train's CLI adds
        train_run(alone_settings, flipflop_data["train"], flipflop_data["test"], alone)
        a, b = (pd.read_csv(d / "metrics.tsv", sep="\t") for d in (dirs[k], alone))
        np.testing.assert_allclose(a["test_loss"], b["test_loss"], rtol=1e-3)
    written = json.loads((tmp_path / "runs/block0.train.json").read_text())
    assert [r["run_id"] for r in written["runs"]] == [f"block/seed{s}" for s in seeds]


def test_one_by_one_trains_each_run_as_its_own_job(tmp_path, flipflop_data, small_settings):
    """--one-by-one: each run through rnngeom.train.main exactly as a job of its own (ensemble size 1), the
    same files as training it alone; any rule, the local ones too."""
    for rule in ("bptt", "rflo"):
        members = [{**copy.deepcopy(small_settings), "learning_rule": rule, "seed": s} for s in (4, 5)]
        seq = [tmp_path / f"{rule}/seq/seed{s}" for s in (4, 5)]
        assert _block_cli(flipflop_data, members, seq, tmp_path / f"{rule}.train.json", one_by_one=True) == 0
        alone = tmp_path / f"{rule}/alone"
        train_run(
            {**members[1], "device": "cpu", "threads": 1},
            flipflop_data["train"],
            flipflop_data["test"],
            alone,
        )
        assert json.loads((seq[1] / "provenance.json").read_text())["ensemble_size"] == 1
        _same_run(seq[1], alone)


def test_an_interrupted_ensemble_block_resumes_to_the_uninterrupted_result(
    tmp_path, flipflop_data, small_settings
):
    members = [{**copy.deepcopy(small_settings), "seed": s} for s in (0, 1, 2)]
    whole = [tmp_path / f"whole/seed{s}" for s in (0, 1, 2)]
    assert _block_cli(flipflop_data, members, whole, tmp_path / "whole.train.json") == 0
    cut = [tmp_path / f"cut/seed{s}" for s in (0, 1, 2)]
    # killed mid-training: the ensemble's resume.pt is in its first run's folder
    ensemble = [{**m, "device": "cpu", "threads": 1} for m in members]
    train_run(ensemble, flipflop_data["train"], flipflop_data["test"], cut, stop_after=13)
    assert (cut[0] / "resume.pt").exists() and not (cut[0] / "metrics.tsv").exists()
    assert _block_cli(flipflop_data, members, cut, tmp_path / "cut.train.json") == 0
    for ours, ref in zip(cut, whole):
        assert json.loads((ours / "provenance.json").read_text())["resumed_from_iteration"] == 10
        _same_run(ours, ref)
    assert not (cut[0] / "resume.pt").exists()


def test_an_interrupted_block_resumes_to_the_uninterrupted_result(tmp_path, flipflop_data, small_settings):
    """One run after another (--one-by-one, as the local rules always): the finished run is re-trained,
    the interrupted one resumes from its own resume.pt."""
    members = [{**copy.deepcopy(small_settings), "seed": s} for s in (0, 1, 2)]
    whole = [tmp_path / f"whole/seed{s}" for s in (0, 1, 2)]
    assert _block_cli(flipflop_data, members, whole, tmp_path / "whole.train.json", one_by_one=True) == 0
    cut = [tmp_path / f"cut/seed{s}" for s in (0, 1, 2)]
    # killed while training its second run: the first is done, the second has its resume.pt
    train_run(
        {**members[0], "device": "cpu", "threads": 1}, flipflop_data["train"], flipflop_data["test"], cut[0]
    )
    cut_settings = {**members[1], "device": "cpu", "threads": 1}
    train_run(cut_settings, flipflop_data["train"], flipflop_data["test"], cut[1], stop_after=13)
    assert (cut[1] / "resume.pt").exists() and not (cut[1] / "metrics.tsv").exists()
    with pytest.raises(ValueError, match="block incomplete"):
        manifest("train", cut)
    assert _block_cli(flipflop_data, members, cut, tmp_path / "cut.train.json", one_by_one=True) == 0
    provenance = json.loads((cut[1] / "provenance.json").read_text())
    assert provenance["resumed_from_iteration"] == 10  # the last checkpoint before the interruption
    for ours, ref in zip(cut, whole):
        assert (ours / "metrics.tsv").read_bytes() == (ref / "metrics.tsv").read_bytes()
        assert not (ours / "resume.pt").exists()
    written = json.loads((tmp_path / "cut.train.json").read_text())
    hashes = [json.loads((d / "provenance.json").read_text())["settings_hash"] for d in cut]
    assert [r["settings_hash"] for r in written["runs"]] == hashes and len(set(hashes)) == 3


def test_a_block_with_a_bad_run_writes_no_manifest(tmp_path, flipflop_data, small_settings, capsys):
    members = [{**copy.deepcopy(small_settings), "seed": s} for s in (0, 1)]
    members[1]["learning_rule"] = "no_such_rule"
    dirs = [tmp_path / "seed0", tmp_path / "seed1"]
    assert _block_cli(flipflop_data, members, dirs, tmp_path / "block0.train.json") == 2
    assert "ensemble members must share" in capsys.readouterr().err  # one block, one condition
    assert not (tmp_path / "block0.train.json").exists()
    with pytest.raises(SystemExit):  # one folder per run
        _block_cli(flipflop_data, members, dirs[:1], tmp_path / "block0.train.json")


def test_a_manifest_names_the_missing_files_of_an_unfinished_block(tmp_path):
    (tmp_path / "runs/x/seed0").mkdir(parents=True)
    with pytest.raises(ValueError, match="seed0/checkpoints.pt"):
        manifest("train", [tmp_path / "runs/x/seed0"])
    with pytest.raises(ValueError, match="unknown stage"):
        manifest("figures", [tmp_path / "runs/x/seed0"])


def test_a_block_job_depends_on_the_sources_of_its_runs_only():
    from rnngeom.deps import job_source_files

    def files(entry, *choice):
        return {f.split("src/rnngeom/", 1)[1] for f in job_source_files(entry, *choice)}

    train = files("rnngeom.train_block", "flipflop", "plrnn", "bptt")
    assert {"train_block.py", "train.py", "blocks.py", "models/plrnn.py", "learning/bptt.py"} <= train
    assert not {"models/lstm.py", "learning/rflo.py", "tasks/delayed_addition.py"} & train
    assert train - {"train_block.py", "blocks.py"} == files("rnngeom.train", "flipflop", "plrnn", "bptt")
    analysis = files("rnngeom.analysis.run_analysis", "flipflop", "plrnn", "bptt")
    assert "blocks.py" in analysis and not {"train.py", "train_block.py"} & analysis


def test_the_scan_definition_path_is_an_optional_string(default_config):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert load_config(raw)["scan"] == "config/scan.yaml"
    assert load_config({**raw, "scan": "config/my_scan.yaml"})["scan"] == "config/my_scan.yaml"
    with pytest.raises(ConfigError, match="'scan'"):
        load_config({**raw, "scan": 3})
