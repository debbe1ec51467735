"""Model tests: each ``step`` against a numpy hand computation of its equation, shapes, gradients,
constraints (PLRNN zero diagonal, rank-one W), init scaling with gain, build_model, seeded determinism."""

import numpy as np
import pytest
import torch

from rnngeom.models import LSTM, MODELS, PLRNN, LeakyRNN, RankOneRNN, build_model

N_IN, N_HID, N_OUT = 2, 3, 2


def set_params(model, **values):
    """Overwrite named parameters with given numpy values (float64 model)."""
    with torch.no_grad():
        for name, v in values.items():
            getattr(model, name).copy_(torch.as_tensor(np.asarray(v, dtype=np.float64)))


def sigmoid(u):
    return 1.0 / (1.0 + np.exp(-u))


# fixed tiny example: batch of 2
X3 = np.array([[0.5, -1.0, 2.0], [-0.3, 0.2, 0.0]])
S2 = np.array([[1.0, -0.5], [0.0, 2.0]])
W33 = np.array([[0.1, -0.4, 0.3], [0.2, 0.5, -0.6], [-0.7, 0.8, 0.9]])
WIN = np.array([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.6]])
B3 = np.array([0.05, -0.1, 0.2])


def step_np(model, x, s):
    with torch.no_grad():
        return model.step(torch.as_tensor(x), torch.as_tensor(s)).numpy()


def test_plrnn_step_matches_hand_computation():
    m = PLRNN(N_IN, N_HID, N_OUT).double()
    a = np.array([0.9, 0.8, 0.7])
    set_params(m, a=a, W=W33, h=B3, C=WIN)  # W33 has a nonzero diagonal: step must ignore it
    W0 = W33 * (1 - np.eye(3))
    expected = a * X3 + np.maximum(X3, 0) @ W0.T + B3 + S2 @ WIN.T
    # row 0 written out for unit 0: 0.9*0.5 + (-0.4*0 + 0.3*2.0) + 0.05 + (0.3*1 - 0.2*-0.5)
    assert expected[0, 0] == pytest.approx(0.45 + 0.6 + 0.05 + 0.4)
    np.testing.assert_allclose(step_np(m, X3, S2), expected, rtol=1e-12)
    np.testing.assert_allclose(m.activity(torch.as_tensor(X3)).numpy(), X3)
    a_, W_, h_, C_ = (t.numpy() for t in m.linear_pieces())
    np.testing.assert_allclose(a_, a)
    np.testing.assert_allclose(W_, W0)
    np.testing.assert_allclose(h_, B3)
    np.testing.assert_allclose(C_, WIN)


def test_leaky_step_matches_hand_computation():
    alpha = 0.25
    m = LeakyRNN(N_IN, N_HID, N_OUT, alpha=alpha).double()
    set_params(m, W=W33, W_in=WIN, b=B3)
    expected = (1 - alpha) * X3 + alpha * (np.tanh(X3) @ W33.T + S2 @ WIN.T + B3)
    np.testing.assert_allclose(step_np(m, X3, S2), expected, rtol=1e-12)
    np.testing.assert_allclose(m.activity(torch.as_tensor(X3)).numpy(), np.tanh(X3))


def test_rank1_step_matches_hand_computation_and_kappa():
    alpha = 0.5
    m = RankOneRNN(N_IN, N_HID, N_OUT, alpha=alpha).double()
    mv, nv = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.6, -0.9])
    set_params(m, m=mv, n=nv, W_in=WIN, b=B3)
    r = np.tanh(X3)
    kappa = r @ nv / 3
    expected = (1 - alpha) * X3 + alpha * (np.outer(kappa, mv) + S2 @ WIN.T + B3)
    np.testing.assert_allclose(step_np(m, X3, S2), expected, rtol=1e-12)
    np.testing.assert_allclose(m.kappa(torch.as_tensor(r)).detach().numpy(), kappa, rtol=1e-12)
    W = m.recurrent_weight().detach().numpy()
    np.testing.assert_allclose(W, np.outer(mv, nv) / 3, rtol=1e-12)


def test_lstm_step_matches_hand_computation():
    N = N_HID
    rng = np.random.default_rng(0)
    W_ih, W_hh, b = rng.normal(size=(4 * N, N_IN)), rng.normal(size=(4 * N, N)), rng.normal(size=4 * N)
    m = LSTM(N_IN, N, N_OUT).double()
    set_params(m, W_ih=W_ih, W_hh=W_hh, b=b)
    h, c = X3, -0.5 * X3
    pre = S2 @ W_ih.T + h @ W_hh.T + b
    i, f = sigmoid(pre[:, :N]), sigmoid(pre[:, N : 2 * N])
    g, o = np.tanh(pre[:, 2 * N : 3 * N]), sigmoid(pre[:, 3 * N :])
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    out = step_np(m, np.concatenate([h, c], 1), S2)
    np.testing.assert_allclose(out, np.concatenate([h_new, c_new], 1), rtol=1e-12)
    np.testing.assert_allclose(m.activity(torch.as_tensor(out)).numpy(), h_new)


def test_lstm_matches_torch_lstmcell():
    """Cross-check the explicit gates against torch's LSTMCell (same (i, f, g, o) row order)."""
    torch.manual_seed(0)
    m = LSTM(N_IN, N_HID, N_OUT).double()
    cell = torch.nn.LSTMCell(N_IN, N_HID).double()
    with torch.no_grad():
        cell.weight_ih.copy_(m.W_ih)
        cell.weight_hh.copy_(m.W_hh)
        cell.bias_ih.copy_(m.b)
        cell.bias_hh.zero_()
    x, s = torch.randn(4, 2 * N_HID, dtype=torch.float64), torch.randn(4, N_IN, dtype=torch.float64)
    h, c = cell(s, (x[:, :N_HID], x[:, N_HID:]))
    torch.testing.assert_close(m.step(x, s), torch.cat([h, c], 1))


def test_lstm_init_bias():
    m = LSTM(N_IN, 4, N_OUT, forget_bias=2.5)
    b = m.b.detach()
    assert torch.all(b[4:8] == 2.5) and torch.all(b[:4] == 0) and torch.all(b[8:] == 0)
    assert m.state_size == 8


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_forward_shapes(arch):
    torch.manual_seed(0)
    m = MODELS[arch](N_IN, 5, N_OUT)
    out = m(torch.randn(4, 7, N_IN))
    assert out.outputs.shape == (4, 7, N_OUT)
    assert out.activity.shape == (4, 7, 5)
    assert out.states.shape == (4, 7, m.state_size)
    assert m.state_size == (10 if arch == "lstm" else 5)
    torch.testing.assert_close(out.activity, m.activity(out.states))


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_gradients_reach_every_parameter(arch):
    torch.manual_seed(0)
    m = MODELS[arch](N_IN, 5, N_OUT)
    out = m(torch.randn(4, 6, N_IN))
    (out.outputs.pow(2).sum() + out.activity.pow(2).sum()).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("opt", [torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD])
def test_plrnn_diagonal_stays_zero(opt):
    torch.manual_seed(0)
    m = PLRNN(N_IN, 6, N_OUT, gain=1.0)
    assert torch.all(torch.diagonal(m.W) == 0)
    o = opt(m.parameters(), lr=0.01, weight_decay=0.01)
    for _ in range(3):
        o.zero_grad()
        m(torch.randn(3, 5, N_IN)).outputs.pow(2).sum().backward()
        o.step()
    assert torch.isfinite(m.W).all()
    assert torch.all(torch.diagonal(m.W) == 0)
    assert torch.all(torch.diagonal(m.linear_pieces()[1]) == 0)
    assert (m.W.detach() * (1 - torch.eye(6))).abs().sum() > 0


def test_rank1_matrix_has_rank_one():
    torch.manual_seed(0)
    m = RankOneRNN(N_IN, 20, N_OUT)
    W = m.recurrent_weight().detach()
    assert torch.linalg.matrix_rank(W).item() == 1
    r = torch.randn(3, 20)
    torch.testing.assert_close(m.kappa(r), r @ m.n.detach() / 20)
    # W r = m κ
    torch.testing.assert_close(r @ W.T, torch.outer(m.kappa(r).detach(), m.m.detach()))
    assert not hasattr(m, "W") or not isinstance(getattr(m, "W", None), torch.nn.Parameter)


def recurrent_init_std(arch, gain, N):
    m = MODELS[arch](N_IN, N, N_OUT, gain=gain)
    if arch == "plrnn":
        W = m.W.detach()
        return W[~torch.eye(N, dtype=torch.bool)].std().item(), gain / N**0.5
    if arch == "leaky":
        return m.W.detach().std().item(), gain / N**0.5
    if arch == "lstm":
        return m.W_hh.detach().std().item(), gain / N**0.5
    if arch == "rank1":
        return m.m.detach().std().item(), gain
    raise AssertionError(arch)


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("gain", [0.5, 3.0])
def test_gain_scales_recurrent_init(arch, gain):
    torch.manual_seed(1)
    N = 2000 if arch == "rank1" else 300
    std, target = recurrent_init_std(arch, gain, N)
    assert std == pytest.approx(target, rel=0.1)


def test_leaky_noise_only_in_training():
    m = LeakyRNN(N_IN, 4, N_OUT, noise_std=0.5)
    x = torch.randn(2, 7, N_IN)
    m.eval()
    torch.testing.assert_close(m(x).states, m(x).states)
    m.train()
    torch.manual_seed(3)
    a = m(x).states
    torch.manual_seed(3)
    b = m(x).states
    torch.testing.assert_close(a, b)  # noise comes from the seeded global RNG
    assert not torch.allclose(a, m(x).states)
    # noise std per step is noise_std * sqrt(alpha)
    m.eval()
    x0, s = torch.zeros(20000, 4), torch.zeros(20000, N_IN)
    clean = m.step(x0, s)
    m.train()
    noise = (m.step(x0, s) - clean).detach()
    assert noise.std().item() == pytest.approx(0.5 * 0.2**0.5, rel=0.05)


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_build_model_round_trip(arch):
    torch.manual_seed(0)
    m = MODELS[arch](3, 6, 2, gain=1.7)
    spec = m.spec()
    assert spec["arch"] == arch and spec["n_hidden"] == 6 and spec["gain"] == 1.7
    m2 = build_model(spec)
    assert type(m2) is type(m) and m2.spec() == spec
    assert {k: v.shape for k, v in m.state_dict().items()} == {k: v.shape for k, v in m2.state_dict().items()}
    m2.load_state_dict(m.state_dict())  # strict
    x = torch.randn(2, 4, 3)
    m.eval(), m2.eval()
    torch.testing.assert_close(m(x).outputs, m2(x).outputs)


def test_build_model_errors():
    with pytest.raises(ValueError, match=r"unknown arch 'gru'.*leaky.*lstm.*plrnn.*rank1"):
        build_model({"arch": "gru", "n_in": 1, "n_hidden": 2, "n_out": 1})
    with pytest.raises(ValueError, match=r"unknown hyperparameter.*'alpha'.*'lstm'"):
        build_model({"arch": "lstm", "n_in": 1, "n_hidden": 2, "n_out": 1, "alpha": 0.1})
    with pytest.raises(ValueError, match="missing.*n_hidden"):
        build_model({"arch": "leaky", "n_in": 1, "n_out": 1})


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_init_is_deterministic_under_manual_seed(arch):
    def make(seed):
        torch.manual_seed(seed)
        return MODELS[arch](N_IN, 8, N_OUT).state_dict()

    a, b, c = make(0), make(0), make(1)
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].float().std() > 0)
