"""The compiled BPTT loops (rnngeom.learning.compiled, kernels/recurrence.c): their tanh, the bits of a
sequence not depending on where it falls in the batch, the NumPy and C loops agreeing in float32, and how the
time_loop setting resolves where no C compiler works."""

import ctypes

import numpy as np
import pytest
import torch
from scipy.special import expit
from test_learning_bptt import SPECS, _ensemble, _rule, require_compiled_loops

from rnngeom.learning import compiled
from rnngeom.learning.bptt_cpu import Scratch, leaky_member, lstm_member, plrnn_member


@pytest.fixture
def loops():
    require_compiled_loops()
    return compiled.loops(np.float32)


def test_float_tanh_is_within_two_ulp_of_float64_tanh(loops):
    tanh = compiled.library().rnngeom_tanh_f32
    x = np.concatenate(
        [
            np.linspace(-10, 10, 40_001),
            np.geomspace(1e-30, 10, 4_000),
            -np.geomspace(1e-30, 10, 4_000),
            [0.0, 0.625, -0.625, np.nextafter(np.float32(0.625), 0), 9.0, 20.0, -50.0, 1e30],
        ]
    ).astype(np.float32)
    ours = np.array([tanh(float(v)) for v in x], dtype=np.float32)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(ours - exact) / ulp) <= 2.0
    assert np.all(np.abs(ours) <= 1) and np.all(np.sign(ours) == np.sign(x))
    assert tanh(float("nan")) != tanh(float("nan"))  # NaN stays NaN (a diverged run is caught)


def test_float_sigmoid_is_within_two_ulp_of_float64(loops):
    sigmoid = compiled.library().rnngeom_sigmoid_f32
    x = np.concatenate([np.linspace(-30, 30, 30_001), np.geomspace(1e-30, 90, 3_000)]).astype(np.float32)
    x = np.concatenate([x, -x, [0.0, 80.0, -80.0, 1e30, -1e30]]).astype(np.float32)
    ours = np.array([sigmoid(float(v)) for v in x], dtype=np.float32)
    exact = expit(x.astype(np.float64))
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    tiny = exact < 1e-30  # below σ(−69): compared in absolute terms (float's ulp there is denormal)
    assert np.max(np.abs(ours - exact)[~tiny] / ulp[~tiny]) <= 2.0
    assert np.all(np.abs(ours - exact)[tiny] < 1e-30)
    assert np.all((ours >= 0) & (ours <= 1))
    assert sigmoid(float("nan")) != sigmoid(float("nan"))


def _member(arch, B, N, dtype, loops_, rng):
    T, n_in, n_out = 9, 3, 2
    s1 = np.concatenate([rng.standard_normal((T, B, n_in)), np.ones((T, B, 1))], 2).astype(dtype)
    targets = rng.standard_normal((T, B, n_out)).astype(dtype)
    mask = (rng.random((T, B, n_out)) < 0.6).astype(dtype)
    p = {"readout.weight": rng.standard_normal((n_out, N)) * 0.3, "readout.bias": rng.standard_normal(n_out)}
    if arch == "lstm":
        p |= {"W_ih": rng.standard_normal((4 * N, n_in)), "W_hh": rng.standard_normal((4 * N, N)) / N**0.5}
        p |= {"b": rng.standard_normal(4 * N) * 0.3}
    elif arch == "plrnn":
        p |= {"W": rng.standard_normal((N, N)) * 0.3 / N**0.5, "a": rng.uniform(0.3, 0.9, N)}
        p |= {"C": rng.standard_normal((N, n_in)), "h": rng.standard_normal(N) * 0.1}
    else:
        p |= {"W": rng.standard_normal((N, N)) * 1.5 / N**0.5, "W_in": rng.standard_normal((N, n_in))}
        p |= {"b": rng.standard_normal(N) * 0.1, "m": rng.standard_normal(N), "n": rng.standard_normal(N)}
    p = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in p.items()}
    return p, s1, targets, mask


def _run(arch, work, p, s1, targets, mask, loops_):
    if loops_ is not None:  # the compiled loss reads targets and mask batch-first, as the minibatch has them
        targets, mask = (np.ascontiguousarray(a.transpose(1, 0, 2)) for a in (targets, mask))
    if arch == "lstm":
        out = lstm_member(work, p, s1, targets, mask, 0.3, loops_)
    elif arch == "plrnn":
        out = plrnn_member(work, p, s1, targets, mask, 0.3, loops_)
    else:
        out = leaky_member(work, p, s1, targets, mask, 0.3, 0.3, arch == "rank1", loops_)
    return out[0], out[1], {k: v.copy() for k, v in out[2].items()}


@pytest.mark.parametrize("arch", ["leaky", "rank1", "plrnn", "lstm"])
def test_c_and_numpy_loops_agree_in_float32(arch, loops):
    """The same equations: float32 gradients to float32 rounding (summation orders and tanh differ; the
    LSTM's other path is torch's fused LSTM kernel)."""
    p, s1, targets, mask = _member(arch, 11, 40, np.float32, loops, np.random.default_rng(1))
    c = _run(arch, Scratch(), p, s1, targets, mask, loops)
    n = _run(arch, Scratch(), p, s1, targets, mask, None)
    assert c[0] == pytest.approx(n[0], rel=1e-5) and c[1] == pytest.approx(n[1], rel=1e-5)
    for name in n[2]:
        scale = np.abs(n[2][name]).max()
        assert np.abs(c[2][name] - n[2][name]).max() <= 1e-4 * scale, name
    assert not all(np.array_equal(c[2][k], n[2][k]) for k in n[2])  # two loops really ran


@pytest.mark.parametrize("arch", ["leaky", "plrnn"])
def test_a_sequence_gets_the_same_bits_wherever_it_falls_in_the_batch(arch, loops):
    """The product's register blocks take row pairs and 32 columns; an odd row or an edge column takes the
    same sums one by one. So the forward pass of a sequence is bit-identical in a batch of 5 and of 6."""
    rng = np.random.default_rng(2)
    p, s1, targets, mask = _member(arch, 6, 37, np.float32, loops, rng)
    work6, work5 = Scratch(), Scratch()
    _run(arch, work6, p, s1, targets, mask, loops)
    _run(arch, work5, p, s1[:, :5].copy(), targets[:, :5].copy(), mask[:, :5].copy(), loops)
    name = "z" if arch == "plrnn" else "x"
    a6 = work6(name, (9, 6, 37), np.float32)
    a5 = work5(name, (9, 5, 37), np.float32)
    np.testing.assert_array_equal(a6[:, :5], a5)


def test_time_loop_resolution_without_a_compiler(monkeypatch, tmp_path, capsys):
    """auto falls back to NumPy (a note on stderr, the reason in provenance); compiled fails naming the
    reason, before any training; numpy never builds; a bad value is named."""
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("RNNGEOM_KERNEL_CACHE", str(tmp_path / "cache"))
    compiled.library.cache_clear()
    try:
        assert compiled.resolve("numpy")[0] == "numpy"
        loop, why = compiled.resolve("auto")
        assert loop == "numpy" and "no-such-compiler" in why
        assert "NumPy time loop" in capsys.readouterr().err
        with pytest.raises(compiled.KernelUnavailable, match="time_loop: compiled.*no-such-compiler"):
            _rule(SPECS["leaky"], 2, "auto", "compiled")
        rule = _rule(SPECS["leaky"], 2, "auto", "auto")
        assert rule.provenance()["time_loop"] == "numpy"
        with pytest.raises(ValueError, match="time_loop must be one of"):
            compiled.resolve("fast")
    finally:
        compiled.library.cache_clear()


def test_a_failed_build_is_reported_with_the_compiler_message(monkeypatch, tmp_path):
    fake = tmp_path / "cc"
    fake.write_text(
        '#!/bin/sh\n[ "$1" = --version ] && echo fake-cc 1.0 && exit 0\necho "boom: no" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    monkeypatch.setenv("RNNGEOM_KERNEL_CACHE", str(tmp_path / "cache"))
    compiled.library.cache_clear()
    try:
        with pytest.raises(compiled.KernelUnavailable, match="boom: no"):
            compiled.library()
        assert not list((tmp_path / "cache").glob("*.so"))  # nothing half-built is left to load
    finally:
        compiled.library.cache_clear()


def test_the_build_is_cached_and_keyed_by_its_source(loops, monkeypatch, tmp_path):
    monkeypatch.setenv("RNNGEOM_KERNEL_CACHE", str(tmp_path))
    compiled.library.cache_clear()
    try:
        lib = compiled.library()
        built = list(tmp_path.glob("recurrence-*.so"))
        assert len(built) == 1 and isinstance(lib, ctypes.CDLL)
        compiled.library.cache_clear()
        compiled.library()
        assert list(tmp_path.glob("recurrence-*.so")) == built  # loaded again, not rebuilt
    finally:
        compiled.library.cache_clear()


def test_the_compiled_rule_records_its_loop_and_matches_autograd_at_a_full_register_block(loops):
    """A quick-size-like member (N 32, a full register block) through the rule, float64, vs autograd."""
    spec = {**SPECS["leaky"], "n_hidden": 32}
    params, batch = _ensemble(spec, K=2, batch_size=4)
    fast, slow = _rule(spec, 2, "auto", "compiled"), _rule(spec, 2, False)
    assert fast.provenance() == {"time_loop": "compiled", "time_loop_note": "time_loop: compiled"}
    lam = fast.lambdas(0).double()
    a, b = fast.gradients_for(params, batch, lam, 0), slow.gradients_for(params, batch, lam, 0)
    for n in params:
        torch.testing.assert_close(a.grads[n], b.grads[n], rtol=1e-9, atol=1e-12, msg=n)


def test_auto_keeps_the_numpy_loops_above_the_size_where_blas_is_faster(loops):
    """auto: C up to BPTT.COMPILED_MAX_UNITS units for the leaky, rank-one and PLRNN networks (the LSTM at
    every size); compiled: C at any size."""
    from rnngeom.learning.bptt import BPTT

    big = {**SPECS["plrnn"], "n_hidden": BPTT.COMPILED_MAX_UNITS + 1}
    assert _rule(big, 1, "auto", "auto").time_loop == "numpy"
    assert _rule(big, 1, "auto", "compiled").time_loop == "compiled"
    assert _rule({**SPECS["plrnn"], "n_hidden": 32}, 1, "auto", "auto").time_loop == "compiled"
    assert _rule({**SPECS["lstm"], "n_hidden": 128}, 1, "auto", "auto").time_loop == "compiled"
