"""Networks trained elsewhere (rnngeom.external, rnngeom.adapters, rnngeom.external_manifest): torch's
RNN/GRU/LSTM stepped as the modules step, a GRU and an LSTM trained here with plain PyTorch analysed in one
call, a map F with planted fixed points, our own leaky run through the external path equal to the pipeline's
analysis, the folder-with-manifest path (its checks, the CLI), and the phase-space animation."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT
from PIL import Image
from torch import nn

from rnngeom.adapters import adapt
from rnngeom.analysis.fixed_points import find_fixed_points
from rnngeom.analysis.loss_drop import detect_loss_drop
from rnngeom.analysis.run_analysis import analyse_run, default_settings, run_starts, trajectories
from rnngeom.checkpoints import load_checkpoints
from rnngeom.constants import TABLES
from rnngeom.external import analyse_manifest, analyse_training, check_manifest_models, load_curve
from rnngeom.external_manifest import ManifestError, read_manifest
from rnngeom.models import build_model
from rnngeom.tasks import get_task
from rnngeom.tasks.base import TaskData, chance_loss
from rnngeom.train import train_run

FLIPFLOP = {"n_steps": 40, "p_pulse": 0.1}
ANALYSIS_TABLES = ("fixed_points", "checkpoint_summary", "gr_scores", "events", "kappa_flow")


class Net(nn.Module):
    """What a user writes: a torch recurrent layer and a linear readout."""

    def __init__(self, kind: str, n_hidden: int):
        super().__init__()
        self.rnn = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}[kind](3, n_hidden, batch_first=True)
        self.out = nn.Linear(n_hidden, 3)

    def forward(self, x):
        return self.out(self.rnn(x)[0])


def train_flipflop(kind: str, n_hidden: int = 16, iterations: int = 300, every: int = 25):
    """Plain PyTorch: Adam on the masked MSE of the 3-bit flip-flop; state dicts and the learning curve
    (iteration, training loss, held-out accuracy and loss) every ``every`` iterations."""
    task = get_task("flipflop")
    train, test = task.generate(512, seed=1, **FLIPFLOP), task.generate(64, seed=2, **FLIPFLOP)
    torch.manual_seed(0)
    net = Net(kind, n_hidden)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    x, y, m = (torch.as_tensor(a) for a in (train.inputs, train.targets, train.mask))
    xt, yt, mt = (torch.as_tensor(a) for a in (test.inputs, test.targets, test.mask))
    gen = torch.Generator().manual_seed(0)
    checkpoints, rows = {}, []
    for it in range(iterations + 1):
        batch = torch.randint(0, len(x), (64,), generator=gen)
        loss = ((net(x[batch]) - y[batch]) ** 2 * m[batch]).sum() / m[batch].sum()
        if it % every == 0:
            checkpoints[it] = {k: v.clone() for k, v in net.state_dict().items()}
            with torch.no_grad():
                out = net(xt)
            held_out = float(((out - yt) ** 2 * mt).sum() / mt.sum())
            rows.append((it, loss.item(), task.accuracy(out.numpy(), test), held_out))
        opt.zero_grad()
        loss.backward()
        opt.step()
    curve = pd.DataFrame(rows, columns=["iteration", "loss", "accuracy", "test_loss"])
    return net, checkpoints, curve, test


def assert_same_drop(a, b) -> None:
    """Two LossDrop results field for field (NaN equal to NaN)."""
    got, want = a.to_dict(), b.to_dict()
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert (isinstance(v, float) and math.isnan(v) and math.isnan(got[k])) or got[k] == v, k


@pytest.fixture(scope="module")
def trained():
    cache = {}

    def get(kind):
        if kind not in cache:
            cache[kind] = train_flipflop(kind)
        return cache[kind]

    return get


# ----------------------------------------------------------------------------------------------------------
# adapters


def _module_states(module, x):
    """What the torch module itself computes on x [B, T, n_in] (batch first): h over time [B, T, N]."""
    if isinstance(module, nn.RNNCellBase):
        h, out = None, []
        for t in range(x.shape[1]):
            h = module(x[:, t], h)
            out.append(h[0] if isinstance(h, tuple) else h)
        return torch.stack(out, dim=1)
    seq = x if module.batch_first else x.transpose(0, 1)
    out = module(seq)[0]
    return out if module.batch_first else out.transpose(0, 1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.RNN(3, 7, batch_first=True),
        lambda: nn.RNN(3, 7, nonlinearity="relu"),
        lambda: nn.RNN(3, 7, bias=False),
        lambda: nn.GRU(3, 7, batch_first=True),
        lambda: nn.GRU(3, 7),
        lambda: nn.LSTM(3, 7, batch_first=True),
        lambda: nn.LSTM(3, 7, bias=False),
        lambda: nn.RNNCell(3, 7),
        lambda: nn.GRUCell(3, 7),
        lambda: nn.LSTMCell(3, 7),
    ],
)
def test_adapter_steps_as_the_torch_module_does(make):
    torch.manual_seed(0)
    module = make()
    model = adapt(module)
    x = torch.randn(5, 9, 3)
    with torch.no_grad():
        ours = model(x).activity
        theirs = _module_states(module, x)
    assert torch.allclose(ours, theirs, atol=1e-6), (ours - theirs).abs().max()
    assert model.state_size == (14 if "LSTM" in type(module).__name__ else 7) and model.n_in == 3


def test_adapter_refuses_what_it_cannot_analyse():
    for module, word in (
        (nn.GRU(3, 4, num_layers=2), "num_layers"),
        (nn.LSTM(3, 4, bidirectional=True), "bidirectional"),
        (nn.LSTM(3, 4, proj_size=2), "proj_size"),
    ):
        with pytest.raises(ValueError, match=word):
            adapt(module)
    with pytest.raises(TypeError, match="cannot analyse a str"):
        adapt("gru")
    with pytest.raises(ValueError, match="state_size and n_in"):
        adapt(lambda h, x: h)


# ----------------------------------------------------------------------------------------------------------
# one call on networks trained here


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_gru_and_lstm_trained_here_give_the_flipflops_attractors_and_the_curves_drop(kind, trained):
    net, checkpoints, curve, test = trained(kind)
    result = analyse_training(net, checkpoints, curve, inputs=test, task="flipflop", recurrent="rnn")
    assert result.iterations == sorted(checkpoints) and result.tables["runs"]["arch"].iloc[0] == kind
    # the 3-bit flip-flop's 8 memories, as the finder run on the same module with other starts sees them
    assert result.final_counts["n_stable"] == 8
    net.load_state_dict(checkpoints[max(checkpoints)])
    model = adapt(net.rnn)
    states, _ = trajectories(model, torch.as_tensor(test.inputs))
    again = find_fixed_points(model, run_starts(states, {**default_settings(), "n_starts": 512}, 7))
    assert again.counts()["stable"] == result.final_counts["n_stable"]
    assert len(result.points_at(max(checkpoints))) == result.final_counts["n_fixed"]
    # the drop is detect_loss_drop's on the curve, against the task's chance loss
    expected = detect_loss_drop(curve["iteration"], curve["loss"], reference_loss=chance_loss(test))
    assert_same_drop(result.loss_drop, expected)
    runs = result.tables["runs"]
    assert expected.escaped and runs["t_drop"].iloc[0] == pytest.approx(expected.t_drop)
    assert runs["learned"].iloc[0] and runs["time_to_attractors"].iloc[0] <= max(checkpoints)
    # a GR score for every transition, judged against the run's calibrated threshold
    assert len(result.gr_scores) == len(checkpoints) - 1 and result.gr_threshold >= 3.5
    assert set(result.tables) == set(TABLES)


def test_files_with_a_prefix_give_the_same_tables_and_an_animation_of_every_checkpoint(trained, tmp_path):
    net, checkpoints, curve, test = trained("gru")
    settings = {"n_starts": 48, "n_trials": 32, "gr_null": {"n_checkpoints": 1, "n_reanalyses": 2}}
    files = {}
    for it, sd in checkpoints.items():  # the container's state dicts, as torch.save files
        files[it] = tmp_path / "ckpt" / f"step_{it}.pt"
        files[it].parent.mkdir(exist_ok=True)
        torch.save(sd, files[it])
    in_memory = analyse_training(net, checkpoints, curve, inputs=test, recurrent="rnn", settings=settings)
    bare = nn.GRU(3, 16, batch_first=True)
    out = tmp_path / "gru_run"
    result = analyse_training(
        bare, files, curve, inputs=test, prefix="rnn.", settings=settings, out_dir=out, figures=True
    )
    for name in ("fixed_points", "checkpoints", "events"):  # the same but for the run id (the folder's name)
        pd.testing.assert_frame_equal(
            result.tables[name].drop(columns="run_id"), in_memory.tables[name].drop(columns="run_id")
        )
    for name in ANALYSIS_TABLES:
        assert (out / "analysis" / f"{name}.tsv").is_file()
    for name in TABLES:
        table = pd.read_csv(out / "tables" / f"{name}.tsv", sep="\t")
        assert "run_id" in table.columns and set(table["run_id"]) <= {"gru_run"}
    # the figures, and the animation: one frame per checkpoint
    for name in ("gr_timeline.png", "phase_portraits.png", "phase_animation.png", "phase_animation.html"):
        assert (out / "figures" / name).stat().st_size > 5000, name
    with Image.open(out / "figures" / "phase_animation.gif") as gif:
        assert gif.n_frames == len(checkpoints)
    page = (out / "figures" / "phase_animation.html").read_text()
    assert "data:image/gif;base64," in page and "analysis time per checkpoint" in page


def test_a_map_with_planted_fixed_points_gives_them_back():
    """F(h, x) = h + a (tanh(g h) - h) + x per unit: at g = 0.5 one stable point (0, 0); at g = 2 each unit
    is bistable, so 9 fixed points: 4 stable at (±h*, ±h*), 4 saddles, 1 unstable at 0 (h* = tanh(2 h*))."""
    h_star = 0.9575040240772687

    def planted(gain):
        return lambda h, x: h + 0.5 * (torch.tanh(gain * h) - h) + x

    states = np.random.default_rng(0).uniform(-1.5, 1.5, (16, 10, 2))
    curve = {"iteration": [0, 10, 20, 30, 40, 50, 60], "loss": [1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1]}
    maps = {0: planted(0.5), 60: planted(2.0)}
    result = analyse_training(
        None, maps, curve, trajectories=states, input=[0.0, 0.0], settings={"n_starts": 64}
    )
    first, last = result.points_at(0), result.points_at(60)
    assert list(first.kind) == ["stable"] and np.allclose(first.positions, 0, atol=1e-8)
    assert last.counts() == {"stable": 4, "saddle": 4, "unstable": 1, "slow": 0}
    stable = np.sort(np.abs(last.positions[last.kind == "stable"]), axis=None)
    assert np.allclose(stable, h_star, atol=1e-8)
    assert result.t_GR == 60 and result.gr_noise_floor < 1e-9  # the planted maps' re-analyses agree

    class Planted(nn.Module):  # the same map as a module with a parameter: its checkpoints are state dicts
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.tensor(1.0))

        def forward(self, h, x):
            return h + 0.5 * (torch.tanh(self.gain * h) - h) + x

    sds = {0: {"gain": torch.tensor(0.5)}, 60: {"gain": torch.tensor(2.0)}}
    as_module = analyse_training(
        Planted(), sds, curve, trajectories=states, input=[0.0, 0.0], settings={"n_starts": 64}
    )
    pd.testing.assert_frame_equal(as_module.fixed_points, result.fixed_points)


def test_our_own_leaky_run_through_the_external_path_gives_the_pipelines_tables(
    tmp_path, flipflop_data, small_settings
):
    run = tmp_path / "runs/flipflop/leaky/bptt/lam0.1/g1.5/seed3"
    train_run(small_settings, flipflop_data["train"], flipflop_data["test"], run)
    ck = load_checkpoints(run / "checkpoints.pt")
    with np.load(flipflop_data["test"]) as z:
        test = TaskData(inputs=z["inputs"], targets=z["targets"], mask=z["mask"])
    settings = {
        "n_trials": 16,
        "n_starts": 32,
        "num_threads": 1,
        "gr_null": {"n_checkpoints": 2, "n_reanalyses": 2},
    }
    analyse_run(
        ck, test, run / "analysis", settings
    )  # the pipeline's analysis (input: the task's resting input)
    snapshots = {it: ck.snapshots[it] for it in ck.iterations}
    metrics = pd.read_csv(run / "metrics.tsv", sep="\t")
    out = tmp_path / "external" / "leaky"
    ours = analyse_training(
        build_model(ck.spec),
        snapshots,
        metrics,
        inputs=test,
        task="flipflop",
        settings=settings,
        out_dir=out,
        figures=False,
    )
    for name in ANALYSIS_TABLES:
        assert (out / "analysis" / f"{name}.tsv").read_bytes() == (
            run / "analysis" / f"{name}.tsv"
        ).read_bytes()
    with (
        np.load(out / "analysis/trajectories_pca.npz") as a,
        np.load(run / "analysis/trajectories_pca.npz") as b,
    ):
        assert all(np.array_equal(a[k], b[k]) for k in b.files)
    pipeline = json.loads((run / "analysis/analysis.json").read_text())
    for key in (
        "t_GR",
        "gr_threshold",
        "gr_noise_floor",
        "gr_null_scores",
        "final_counts",
        "fixed_point_input",
    ):
        assert ours.analysis.info[key] == pipeline[key], key
    # and the loss drop of runs.tsv is the aggregation's of that run (the same chance loss)
    from rnngeom.aggregate import collect_run

    row = collect_run(run, {"flipflop": 0.9})["runs"]
    external = ours.tables["runs"].iloc[0]
    for key in ("t_drop", "t_onset", "plateau_length", "search_fraction", "chance_loss", "time_to_learn"):
        assert (pd.isna(row[key]) and pd.isna(external[key])) or row[key] == pytest.approx(external[key]), key


def test_entry_point_checks_before_any_work(trained):
    net, checkpoints, curve, test = trained("gru")
    bad = dict(checkpoints)
    bad[300] = {**bad[300], "rnn.weight_hh_l0": torch.zeros(48, 8)}
    with pytest.raises(ValueError, match=r"iteration 300: 'rnn.weight_hh_l0' has shape \[48, 8\]"):
        analyse_training(net, bad, curve, inputs=test, recurrent="rnn")
    with pytest.raises(ValueError, match="set the prefix 'rnn.'"):
        analyse_training(nn.GRU(3, 16, batch_first=True), checkpoints, curve, inputs=test)
    with pytest.raises(ValueError, match="inputs have 3 channels, the model has n_in=4"):
        analyse_training(nn.GRU(4, 16), None, curve, inputs=test)
    with pytest.raises(ValueError, match="no column 'loss'"):
        analyse_training(net, checkpoints, curve.rename(columns={"loss": "x"}), inputs=test, recurrent="rnn")
    with pytest.raises(ValueError, match="unknown analysis setting"):
        analyse_training(net, checkpoints, curve, inputs=test, recurrent="rnn", settings={"n_start": 3})
    with pytest.raises(ValueError, match="inputs .* or trajectories"):
        analyse_training(net, checkpoints, curve, recurrent="rnn")
    assert list(load_curve([(0, 1.0), (10, 0.5)]).columns) == [
        "iteration",
        "task_loss",
        "test_loss",
        "test_accuracy",
        "diverged",
    ]


# ----------------------------------------------------------------------------------------------------------
# a folder with a manifest


def make_folder(folder: Path, trained) -> Path:
    """A folder as a user would leave it: checkpoints of their model (a container: rnn.*, out.*), the
    learning curve, held-out trials and a manifest."""
    net, checkpoints, curve, test = trained("gru")
    (folder / "ckpt").mkdir(parents=True)
    for it in (0, 50, 100, 150, 300):
        torch.save(checkpoints[it], folder / "ckpt" / f"step_{it}.pt")
    curve.to_csv(folder / "curve.tsv", sep="\t", index=False)
    np.savez(folder / "test.npz", inputs=test.inputs, targets=test.targets, mask=test.mask)
    manifest = {
        "name": "gru_fixture",
        "model": {"kind": "gru", "input_size": 3, "hidden_size": 16, "prefix": "rnn."},
        "checkpoints": "ckpt/step_{iteration}.pt",
        "curve": {"file": "curve.tsv", "accuracy": "accuracy", "test_loss": "test_loss"},
        "inputs": "test.npz",
        "task": "flipflop",
        "analysis": {"n_starts": 32, "n_trials": 16, "gr_null": {"n_checkpoints": 1, "n_reanalyses": 2}},
    }
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory, trained):
    return make_folder(tmp_path_factory.mktemp("external") / "gru_folder", trained)


def edit(folder: Path, tmp_path: Path, change) -> Path:
    """A copy of the folder with its manifest changed by ``change(dict)``."""
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    manifest = yaml.safe_load((copy / "manifest.yaml").read_text())
    change(manifest)
    (copy / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    return copy


def _set(path: str, value):
    def change(m):
        *parents, last = path.split(".")
        node = m
        for p in parents:
            node = node[p]
        if value is None:
            del node[last]
        else:
            node[last] = value

    return change


BAD_MANIFESTS = [
    (_set("model.kind", "transformer"), "model.kind"),
    (_set("model.hidden_size", None), "'hidden_size' is a required property"),
    (_set("model.hidden_size", 0), "model.hidden_size"),
    (_set("model.nonlinearity", "relu"), "model.nonlinearity"),
    (_set("checkpoints", "ckpt/*.pt"), "checkpoints"),
    (_set("checkpoints", "ckpt/none_{iteration}.pt"), "at 'checkpoints': no file"),
    (_set("checkpoints", [{"iteration": 0, "file": "ckpt/missing.pt"}]), "checkpoints.0.file"),
    (_set("curve.loss", "no_such_column"), "curve.loss"),
    (_set("curve.file", "missing.tsv"), "curve.file"),
    (_set("model.input_size", 4), "at 'inputs'"),
    (_set("input", [0.0, 0.0]), "at 'input'"),
    (lambda m: (m.pop("task"), m.update(input="task")), "at 'input': input task needs the manifest's task"),
    (_set("analysis.n_starts", 0), "analysis.n_starts"),
    (_set("analysis.n_start", 5), "at 'analysis'"),
    (_set("loss_drop", {"min_drop": 1}), "at 'loss_drop'"),
    (_set("name", "bad name!"), "at 'name'"),
    (_set("trajectories", "test.npz"), "at 'inputs'"),
    (_set("unknown_key", 1), "'unknown_key' was unexpected"),
]


@pytest.mark.parametrize("change,key", BAD_MANIFESTS, ids=[k for _, k in BAD_MANIFESTS])
def test_each_bad_manifest_is_rejected_naming_the_key(folder, tmp_path, change, key):
    with pytest.raises(ManifestError) as err:
        read_manifest(edit(folder, tmp_path, change))
    message = str(err.value)
    assert key in message and "manifest.yaml" in message and "\n" not in message, message


def test_corrupt_checkpoints_and_shape_mismatches_are_named(folder, tmp_path):
    manifest = read_manifest(folder)
    assert [it for it, _ in manifest.checkpoints] == [0, 50, 100, 150, 300]
    check_manifest_models(manifest)  # the fixture is fine
    broken = edit(folder, tmp_path, lambda m: None)
    data = (broken / "ckpt/step_100.pt").read_bytes()
    (broken / "ckpt/step_100.pt").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ManifestError, match=r"step_100.pt \(iteration 100\) is corrupt: it is a truncated"):
        read_manifest(broken)
    smaller = edit(folder, tmp_path / "b", _set("model.hidden_size", 8))
    with pytest.raises(
        ManifestError, match=r"step_0.pt \(iteration 0\): 'rnn.weight_ih_l0' has shape \[48, 3\]"
    ):
        check_manifest_models(read_manifest(smaller))
    prefix = edit(folder, tmp_path / "c", _set("model.prefix", "gru."))
    with pytest.raises(ManifestError, match="no key starts with the prefix 'gru.'"):
        check_manifest_models(read_manifest(prefix))


def test_cli_analyses_a_folder_and_refuses_a_bad_one_in_one_line(folder, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "rnngeom.external", "--manifest", str(folder)]
    proc = subprocess.run([*base, "--check"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "OK (5 checkpoints of a gru)" in proc.stdout, proc.stderr
    out = tmp_path / "gru_fixture"
    proc = subprocess.run(
        [*base, "--out-dir", str(out), "--threads", "1"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "gru_fixture: 5 checkpoints" in proc.stdout
    runs = pd.read_csv(out / "tables/runs.tsv", sep="\t")
    assert runs["run_id"].tolist() == ["gru_fixture"] and runs["learning_rule"].tolist() == ["external"]
    bad = edit(folder, tmp_path, _set("model.kind", "transformer"))
    proc = subprocess.run(
        [sys.executable, "-m", "rnngeom.external", "--manifest", str(bad), "--check"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "model.kind" in proc.stderr


def test_analyse_manifest_is_analyse_training(folder, tmp_path, trained):
    net, checkpoints, curve, test = trained("gru")
    result = analyse_manifest(read_manifest(folder), tmp_path / "a", figures=False)
    direct = analyse_training(
        net,
        {it: checkpoints[it] for it in (0, 50, 100, 150, 300)},
        curve,
        inputs=test,
        task="flipflop",
        recurrent="rnn",
        settings=read_manifest(folder).analysis,
        figures=False,
    )
    pd.testing.assert_frame_equal(result.fixed_points, direct.fixed_points)
    assert_same_drop(result.loss_drop, direct.loss_drop)


def test_the_docs_settings_tables_are_the_codes_defaults():
    """docs/own-rnn.md lists every analysis and loss-drop setting with its default: the code's."""
    from rnngeom.analysis.loss_drop import default_settings as loss_drop_defaults

    def flat(d, prefix=""):
        for k, v in d.items():
            yield from flat(v, f"{prefix}{k}.") if isinstance(v, dict) else [(prefix + k, v)]

    text = (ROOT / "docs/own-rnn.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_.]+)` \| `([^`]+)` \|", text, flags=re.M))
    expected = dict(flat(default_settings())) | loss_drop_defaults()
    assert set(rows) == set(expected)
    for key, value in expected.items():
        assert json.loads(rows[key]) == value, key
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):  # the example's code parses
        compile(block, "docs/own-rnn.md", "exec")
