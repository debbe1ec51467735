"""Freeze-in (TCR as the only, local learning signal): collapse without control, none with control or
noise."""

import functools
import io

import numpy as np
import pytest
import torch

from rnngeom.learning import Batch, get_rule
from rnngeom.learning.freeze_in import FreezeIn, FreezeInControl, FreezeInNoise
from rnngeom.learning.rflo import RFLO
from rnngeom.models import build_model
from rnngeom.tasks import get_task

# A tiny, strongly connected leaky network driven by flip-flop pulses, trained by freeze-in with Adam. Checked
# on 16 seeds: without control the activity variance ends 3e4-1e9 times below its start (criterion: 1e3), with
# the controller 6-120 times below (and always above 2.6e-3), with weight noise 0.1 4-200 times below.
N_HIDDEN, GAIN, ALPHA, LAMBDA, LR, N_STEPS = 12, 1.8, 0.3, 1.0, 3e-2, 300
COLLAPSE = 1e-3  # "collapsed": final activity variance below COLLAPSE × the initial one


def setup(arch, seeds, lams=None):
    spec = {"arch": arch, "n_in": 3, "n_out": 3, "n_hidden": N_HIDDEN, "alpha": ALPHA}
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build_model({**spec, "gain": GAIN}))
    params = {
        n: torch.stack([dict(m.named_parameters())[n].detach().clone() for m in models])
        for n, _ in models[0].named_parameters()
    }
    members = [
        {"seed": s, "lambda_tcr": lam, "gain": GAIN} for s, lam in zip(seeds, lams or [LAMBDA] * len(seeds))
    ]
    return spec, members, params


def batches(seeds, n_steps, batch_size=16):
    """Flip-flop minibatches, member k's drawn from its own seed: [K, B, T, *] per step."""
    data = [get_task("flipflop").generate(256, seed=s, n_steps=30, p_pulse=0.1) for s in seeds]
    rngs = [np.random.default_rng(s) for s in seeds]
    for _ in range(n_steps):
        idx = [rng.choice(256, size=batch_size, replace=False) for rng in rngs]
        yield Batch(
            *(
                torch.from_numpy(np.stack([getattr(d, f)[i] for d, i in zip(data, idx)]))
                for f in ("inputs", "targets", "mask")
            )
        )


def train(rule, params, opt, batch_iter, start, n_steps):
    """The trainer's loop: gradients (at the rule's own λ(t)) -> optimizer step -> after_step. Returns
    per-step records."""
    rows = []
    for it, batch in zip(range(start, start + n_steps), batch_iter):
        res = rule.gradients(params, batch, it)
        for name, p in params.items():
            p.grad = res.grads[name]
        opt.step()
        rule.after_step(params, it, res)
        rows.append((res.activity_var.clone(), res.lambda_tcr.clone()))
    return rows


@functools.cache
def freeze_in_run(rule_name, seed, noise_std=None):
    """(activity variance per step, λ per step, initial and final params) of one member trained N_STEPS."""
    spec, members, params = setup("leaky", [seed])
    settings = {} if noise_std is None else {"weight_noise_std": noise_std}
    rule = get_rule(rule_name)(spec, members, settings)
    initial = {n: p.clone() for n, p in params.items()}
    opt = torch.optim.Adam(list(params.values()), lr=LR)
    rows = train(rule, params, opt, batches([seed], N_STEPS), 0, N_STEPS)
    var = torch.stack([v[0] for v, _ in rows]).numpy()
    lam = torch.stack([lam[0] for _, lam in rows]).numpy()
    return var, lam, initial, params


def final_var(var):
    return var[-20:].mean()  # the last 20 steps: one step's minibatch is noisy


# -- collapse and its prevention -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_without_control_activity_collapses_to_a_fixed_point(seed):
    var, lam, initial, params = freeze_in_run("freeze_in", seed)
    assert final_var(var) < COLLAPSE * var[0], (var[0], final_var(var))
    assert np.all(lam == LAMBDA)
    # The route: the input weights are silenced, so every trial sits at the same fixed point.
    assert params["W_in"].norm() < 0.05 * initial["W_in"].norm()
    assert torch.equal(params["readout.weight"], initial["readout.weight"])  # the readout never learns


@pytest.mark.parametrize("seed", [0, 1])
def test_controller_prevents_the_collapse(seed):
    var, lam, _, _ = freeze_in_run("freeze_in_control", seed)
    s = FreezeInControl.default_settings()
    assert final_var(var) > COLLAPSE * var[0], (var[0], final_var(var))
    # It backs off once the variance falls below low_frac · target_var; the Adam momentum carries it further
    # down, but by less than 10x.
    assert final_var(var) > 0.1 * s["low_frac"] * s["target_var"]
    assert lam[0] == LAMBDA and lam[-1] < 1e-6 * LAMBDA  # λ was lowered, and recorded every step
    uncontrolled, _, _, _ = freeze_in_run("freeze_in", seed)
    np.testing.assert_array_equal(var[:10], uncontrolled[:10])  # identical until the controller acts


@pytest.mark.parametrize("seed", [0, 1])
def test_weight_noise_prevents_the_collapse(seed):
    var, lam, _, _ = freeze_in_run("freeze_in_noise", seed, noise_std=0.1)
    uncontrolled, _, _, _ = freeze_in_run("freeze_in", seed)
    assert final_var(var) > COLLAPSE * var[0], (var[0], final_var(var))
    assert final_var(var) > 100 * final_var(uncontrolled)
    assert np.all(lam == LAMBDA)


# -- schedule ------------------------------------------------------------------------------------------------
def test_ramp_schedule():
    spec, members, _ = setup("leaky", [0, 1], lams=[0.5, 2.0])
    for cls in (FreezeIn, FreezeInNoise, FreezeInControl):
        rule = cls(spec, members, {"schedule": "ramp", "ramp_iterations": 40})
        assert torch.equal(rule.lambdas(0), torch.zeros(2))
        torch.testing.assert_close(rule.lambdas(10), torch.tensor([0.125, 0.5]))
        torch.testing.assert_close(rule.lambdas(40), torch.tensor([0.5, 2.0]))
        torch.testing.assert_close(rule.lambdas(1000), torch.tensor([0.5, 2.0]))
    constant = FreezeIn(spec, members, {})
    assert torch.equal(constant.lambdas(0), torch.tensor([0.5, 2.0]))


# -- reuse of RFLO -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["leaky", "rank1"])
def test_updates_are_rflo_with_the_task_error_switched_off(arch):
    seeds = [3, 4]
    spec, members, params = setup(arch, seeds, lams=[0.3, 1.0])
    batch = next(batches(seeds, 1))
    res = FreezeIn(spec, members, {}).gradients(params, batch, 0)
    silent = Batch(batch.inputs, batch.targets, torch.zeros_like(batch.mask))
    ref = RFLO(spec, members, {}).gradients(params, silent, 0)
    for name in params:
        if name.startswith("readout"):
            assert torch.equal(res.grads[name], torch.zeros_like(params[name]))
        else:
            torch.testing.assert_close(res.grads[name], ref.grads[name], rtol=0, atol=0)
    assert torch.equal(res.lambda_tcr, torch.tensor([0.3, 1.0]))  # the rule's own λ_k(t), recorded
    with_task = RFLO(spec, members, {}).gradients(params, batch, 0)
    assert torch.equal(res.task_loss, with_task.task_loss)  # still reported, for the metrics


# -- determinism, members, resume ----------------------------------------------------------------------------
CONTROL_ACTIVE = {"target_var": 1.0, "weight_noise_std": 0.1}  # controller acts from the first step


def short_run(rule_name, arch, seeds, n_steps=12):
    spec, members, params = setup(arch, seeds)
    rule = get_rule(rule_name)(spec, members, CONTROL_ACTIVE)
    opt = torch.optim.Adam(list(params.values()), lr=LR)
    rows = train(rule, params, opt, batches(seeds, n_steps), 0, n_steps)
    return params, rows, rule


@pytest.mark.parametrize("rule_name", ["freeze_in_noise", "freeze_in_control"])
@pytest.mark.parametrize("arch", ["leaky", "rank1"])
def test_deterministic_for_a_seed(rule_name, arch):
    a, rows_a, _ = short_run(rule_name, arch, [5, 6])
    b, rows_b, _ = short_run(rule_name, arch, [5, 6])
    for name in a:
        assert torch.equal(a[name], b[name])
    for (va, la), (vb, lb) in zip(rows_a, rows_b):
        assert torch.equal(va, vb) and torch.equal(la, lb)
    if rule_name == "freeze_in_control":
        assert rows_a[-1][1].max() < LAMBDA  # the controller did act


@pytest.mark.parametrize("rule_name", ["freeze_in_noise", "freeze_in_control"])
def test_members_are_independent(rule_name):
    together, rows3, _ = short_run(rule_name, "leaky", [5, 6, 7], n_steps=6)
    for k, seed in enumerate([5, 6, 7]):
        alone, rows1, _ = short_run(rule_name, "leaky", [seed], n_steps=6)
        for name in alone:
            torch.testing.assert_close(together[name][k], alone[name][0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(rows3[-1][1][k], rows1[-1][1][0])


@pytest.mark.parametrize("rule_name", ["freeze_in_noise", "freeze_in_control"])
def test_state_dict_round_trip_continues_identically(rule_name):
    seeds = [5, 6]
    spec, members, params = setup("leaky", seeds)
    rule = get_rule(rule_name)(spec, members, CONTROL_ACTIVE)
    opt = torch.optim.Adam(list(params.values()), lr=LR)
    stream = batches(seeds, 20)
    train(rule, params, opt, stream, 0, 10)

    # Save everything a resume needs, through torch.save as the trainer would.
    buf = io.BytesIO()
    torch.save({"rule": rule.state_dict(), "params": params, "opt": opt.state_dict()}, buf)
    uninterrupted = train(rule, params, opt, stream, 10, 10)

    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    spec, members, _ = setup("leaky", seeds)
    resumed_rule = get_rule(rule_name)(spec, members, CONTROL_ACTIVE)
    resumed_rule.load_state_dict(saved["rule"])
    resumed_params = saved["params"]
    resumed_opt = torch.optim.Adam(list(resumed_params.values()), lr=LR)
    resumed_opt.load_state_dict(saved["opt"])
    data = batches(seeds, 20)  # a fresh stream, advanced to iteration 10 (as the trainer's (seed, i) batches)
    for _ in range(10):
        next(data)
    resumed = train(resumed_rule, resumed_params, resumed_opt, data, 10, 10)

    for name in params:
        assert torch.equal(params[name], resumed_params[name])
    for (va, la), (vb, lb) in zip(uninterrupted, resumed):
        assert torch.equal(va, vb) and torch.equal(la, lb)


# -- construction --------------------------------------------------------------------------------------------
def test_registered_side_by_side_with_one_settings_block():
    names = ["freeze_in", "freeze_in_noise", "freeze_in_control"]
    classes = [get_rule(n) for n in names]
    assert classes == [FreezeIn, FreezeInNoise, FreezeInControl]
    assert all(c.default_settings() == FreezeIn.default_settings() for c in classes)


@pytest.mark.parametrize(
    "bad",
    [
        {"schedule": "cosine"},
        {"ramp_iterations": 0},
        {"down": 1.5},
        {"weight_noise_std": -1.0},
        {"lambda_tcr": 1.0},
    ],
)
def test_rejects_bad_settings(bad):
    spec, members, _ = setup("leaky", [0])
    with pytest.raises(ValueError, match=next(iter(bad))):
        FreezeInControl(spec, members, bad)


def test_rejects_other_architectures():
    with pytest.raises(ValueError, match="plrnn"):
        FreezeIn(
            {"arch": "plrnn", "n_in": 3, "n_out": 3, "n_hidden": 4}, [{"seed": 0, "lambda_tcr": 1.0}], {}
        )
