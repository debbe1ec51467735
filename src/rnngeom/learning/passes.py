"""The fast pass of each recurrence: forward and hand-written backward, batched over the K members of an
ensemble, in torch, the same code on a CPU and a GPU.

    leaky / rank-one:  x_t = (1-α) x_{t-1} + α (W r_{t-1} + W_in s_t + b) + ξ_t,   r_t = tanh(x_t)
    PLRNN:             z_t = a ⊙ z_{t-1} + W̃ relu(z_{t-1}) + h + C s_t,               r_t = z_t
    LSTM:              pre_t = W_ih s_t + W_hh h_{t-1} + b -> i, f, o = σ(.), g = tanh(.);
                       c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t),              r_t = h_t

(the model files, rnngeom/models/, state the same equations step by step; tests/test_learning_passes.py
differentiates through them in float64 and compares). Each member k has its own parameters ([K, ...]
stacks) and its own minibatch; nothing mixes members, so member k's numbers equal its solo run's up to how
the batched matrix products round for a batch of K (docs/pipeline.md).

Layout: time-first, [T, K, B, n], so that the state of step t is one contiguous block and the Python loop
over time runs a few in-place batched products and elementwise operations on it. A small network's step is
a few microseconds of arithmetic: the cost is the number of calls and passes over memory, so the loops keep
few calls per step, accumulate the weight gradients and the activity statistics there (while a step's
blocks are in cache), and avoid full-size temporaries.

Loss derivatives shared by the architectures (``readout_and_loss``), with m the task mask:
    y_t = B r_t + b_out,   dL/dy_t = 2 m_t ⊙ (y_t − y*_t) / Σ m   (rnngeom.losses)
    dL/dr_t (direct) = (dL/dy_t) B + λ ∂TCR/∂r_t                     (rnngeom.tcr)
"""

from __future__ import annotations

import torch

from rnngeom.learning import Batch, StepResult
from rnngeom.losses import masked_mse, masked_mse_grad
from rnngeom.tcr import tcr_grad, tcr_penalty


def time_first(x: torch.Tensor) -> torch.Tensor:
    """[K, B, T, n] -> [T, K, B, n], contiguous."""
    return x.permute(2, 0, 1, 3).contiguous()


def _project(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """x Wᵀ (+ b) per member for every step: x [T, K, B, n], W [K, m, n], b [K, m] -> [T, K, B, m]."""
    T, K, B, n = x.shape
    y = torch.bmm(x.transpose(0, 1).reshape(K, T * B, n), W.transpose(1, 2)).view(K, T, B, -1)
    y = y.transpose(0, 1).contiguous()
    return y if b is None else y.add_(b[None, :, None, :])


class Activity:
    """What every pass hands the shared loss: the activity r_1..r_T, time-first, and its statistics."""

    def __init__(self, rs: torch.Tensor):
        self.rs = rs  # [T + 1, K, B, N], rs[0] = r_0 = 0 (all but the LSTM) or h_0 = 0
        self.r = rs[1:]

    def variance(self) -> torch.Tensor:
        """[K] variance of each unit's activity over batch and time, averaged over units (two-pass, float64
        sums of float32 values: exact enough for a collapse towards a fixed point)."""
        T, K, B, N = self.r.shape
        mean = self.r.sum(dim=(0, 2), dtype=torch.float64) / (T * B)  # [K, N]
        centred = self.r - mean.to(self.r.dtype)[None, :, None, :]
        return (centred * centred).sum(dim=(0, 2), dtype=torch.float64).mean(dim=1) / (T * B)


def readout_and_loss(act: Activity, batch: Batch, params: dict, lambdas: torch.Tensor):
    """Readout, losses and dL/dr_t (direct part) from the activity.

    Returns (task_loss [K], tcr [K], dL/dr [T, K, B, N], dL/dy [T, K, B, O])."""
    r = act.r
    Bo = params["readout.weight"]  # [K, O, N]
    y = _project(r, Bo, params["readout.bias"])
    targets, mask = time_first(batch.targets), time_first(batch.mask)
    task_loss = masked_mse(y, targets, mask, member_dim=1)
    dy = masked_mse_grad(y, targets, mask, member_dim=1)
    dr = _project(dy, Bo.transpose(1, 2))  # dL/dy B
    pairs = batch.pair_weight("time_first")
    tcr = tcr_penalty(r, time_dim=0, member_dim=1, pair_weight=pairs)
    if bool((lambdas != 0).any()):  # dr += λ_k ∂TCR/∂r (nothing to add in a block without TCR)
        tcr_grad(r, time_dim=0, member_dim=1, weight=lambdas.to(r), out=dr, pair_weight=pairs)
    return task_loss, tcr, dr, dy


def _readout_grads(dy: torch.Tensor, r: torch.Tensor) -> dict:
    """dL/dB = Σ_t dy_tᵀ r_t, dL/db_out = Σ_t dy_t (per member)."""
    dB = torch.bmm(dy[0].transpose(1, 2), r[0])
    for t in range(1, dy.shape[0]):
        dB.baddbmm_(dy[t].transpose(1, 2), r[t])
    return {"readout.weight": dB, "readout.bias": dy.sum(dim=(0, 2))}


# -- leaky and rank-one -----------------------------------------------------------------------------------
def recurrent_weight(params: dict, rank_one: bool) -> torch.Tensor:
    """[K, N, N] recurrent matrices: W, or m nᵀ / N for the rank-one RNN."""
    if rank_one:
        m, n = params["m"], params["n"]
        return m[:, :, None] * n[:, None, :] / m.shape[1]
    return params["W"]


def leaky_forward(
    params: dict, s: torch.Tensor, alpha: float, rank_one: bool, noise: torch.Tensor | None = None
) -> Activity:
    """x_t = (1-α) x_{t-1} + α (W r_{t-1} + W_in s_t + b) + ξ_t, r_t = tanh(x_t), from x_0 = 0.

    s: inputs [T, K, B, n_in] (time-first); noise: ξ [T, K, B, N] or None."""
    W = recurrent_weight(params, rank_one)
    T, K, B, _ = s.shape
    N = W.shape[1]
    Wt_a = (alpha * W).transpose(1, 2).contiguous()  # α Wᵀ
    # xs[t] starts as α (W_in s_t + b) and becomes x_{t+1} in place
    xs = _project(s, params["W_in"], params["b"]).mul_(alpha)
    rs = s.new_empty(T + 1, K, B, N)
    rs[0] = 0  # r_0 = tanh(x_0) = 0
    for t in range(T):
        x = xs[t].baddbmm_(rs[t], Wt_a)
        if alpha != 1.0 and t > 0:
            x.add_(xs[t - 1], alpha=1 - alpha)
        if noise is not None:
            x.add_(noise[t])
        torch.tanh(x, out=rs[t + 1])
    return Activity(rs)


def leaky_pass(
    params: dict,
    batch: Batch,
    lambdas: torch.Tensor,
    alpha: float,
    rank_one: bool,
    noise: torch.Tensor | None = None,
) -> StepResult:
    """BPTT of the leaky (or rank-one) RNN.

    Backward:  g^x_t = φ'(x_t) ⊙ (dL/dr_t + α g^x_{t+1} W) + (1-α) g^x_{t+1},   φ' = 1 − r²
               dW = α Σ_t g^x_tᵀ r_{t-1},  dW_in = α Σ_t g^x_tᵀ s_t,  db = α Σ_t g^x_t
    Rank one (W = m nᵀ/N):  dm = dW n / N,  dn = dWᵀ m / N.
    """
    s = time_first(batch.inputs)
    W = recurrent_weight(params, rank_one)
    act = leaky_forward(params, s, alpha, rank_one, noise)
    rs, r = act.rs, act.r
    task_loss, tcr, gx, dy = readout_and_loss(act, batch, params, lambdas)
    grads = _readout_grads(dy, r)
    T = gx.shape[0]
    Wa = alpha * W
    dphi = torch.addcmul(r.new_ones(()), r, r, value=-1)  # φ' = 1 − r², one pass
    # g^x_t overwrites dL/dr_t; the weight gradients accumulate while g^x_t and r_{t-1} are in cache
    gx[T - 1].mul_(dphi[T - 1])
    dW = torch.bmm(gx[T - 1].transpose(1, 2), rs[T - 1])
    dW_in = torch.bmm(gx[T - 1].transpose(1, 2), s[T - 1])
    for t in range(T - 2, -1, -1):
        g = gx[t].baddbmm_(gx[t + 1], Wa).mul_(dphi[t])
        if alpha != 1.0:
            g.add_(gx[t + 1], alpha=1 - alpha)
        dW.baddbmm_(g.transpose(1, 2), rs[t])
        dW_in.baddbmm_(g.transpose(1, 2), s[t])
    dW.mul_(alpha)
    grads["W_in"] = dW_in.mul_(alpha)
    grads["b"] = gx.sum(dim=(0, 2)).mul_(alpha)
    if rank_one:
        m, n = params["m"], params["n"]
        N = m.shape[1]
        grads["m"] = torch.bmm(dW, n[:, :, None])[:, :, 0] / N
        grads["n"] = torch.bmm(dW.transpose(1, 2), m[:, :, None])[:, :, 0] / N
    else:
        grads["W"] = dW
    return StepResult(task_loss, tcr, grads, act.variance())


# -- PLRNN ------------------------------------------------------------------------------------------------
def plrnn_pass(params: dict, batch: Batch, lambdas: torch.Tensor) -> StepResult:
    """z_t = a ⊙ z_{t-1} + W̃ relu(z_{t-1}) + h + C s_t,  r_t = z_t,  W̃ = W with zero diagonal.

    Backward:  g_t = dL/dr_t + a ⊙ g_{t+1} + 1[z_t > 0] ⊙ (g_{t+1} W̃)
               da = Σ_t g_t ⊙ z_{t-1},  dW = (Σ_t g_tᵀ relu(z_{t-1})) ⊙ offdiag,  dh = Σ_t g_t,
               dC = Σ_t g_tᵀ s_t
    """
    s = time_first(batch.inputs)
    T, K, B, _ = s.shape
    a = params["a"][:, None, :]  # [K, 1, N]
    N = a.shape[2]
    off_diag = 1.0 - torch.eye(N, dtype=s.dtype, device=s.device)
    Wm = params["W"] * off_diag
    Wt = Wm.transpose(1, 2).contiguous()
    # zs[t] starts as C s_t + h and becomes z_{t+1} in place; relu[t] = relu(z_t), z_0 = 0
    zs = s.new_empty(T + 1, K, B, N)
    zs[0] = 0
    zs[1:] = _project(s, params["C"], params["h"])
    relu = s.new_empty(T + 1, K, B, N)
    relu[0] = 0
    for t in range(1, T + 1):
        z = zs[t].baddbmm_(relu[t - 1], Wt).addcmul_(a, zs[t - 1])
        torch.clamp_min(z, 0.0, out=relu[t])
    act = Activity(zs)
    task_loss, tcr, gz, dy = readout_and_loss(act, batch, params, lambdas)
    grads = _readout_grads(dy, act.r)
    z = act.r
    dW = torch.bmm(gz[T - 1].transpose(1, 2), relu[T - 1])
    dC = torch.bmm(gz[T - 1].transpose(1, 2), s[T - 1])
    for t in range(T - 2, -1, -1):
        g_next = gz[t + 1]
        active = (z[t] > 0).to(s.dtype)
        g = gz[t].addcmul_(a, g_next).addcmul_(active, torch.bmm(g_next, Wm))
        dW.baddbmm_(g.transpose(1, 2), relu[t])
        dC.baddbmm_(g.transpose(1, 2), s[t])
    grads["a"] = (gz[1:] * z[:-1]).sum(dim=(0, 2))  # z_0 = 0
    grads["W"] = dW.mul_(off_diag)
    grads["h"] = gz.sum(dim=(0, 2))
    grads["C"] = dC
    return StepResult(task_loss, tcr, grads, act.variance())


# -- LSTM -------------------------------------------------------------------------------------------------
def lstm_pass(params: dict, batch: Batch, lambdas: torch.Tensor) -> StepResult:
    """LSTM (lstm.py), gates stacked (i, f, g, o).

    Backward, with carries dh (through W_hh) and dc (through the cell), τ_t = tanh(c_t):
        dh_t = dL/dr_t + dpre_{t+1} W_hh        dc_t = dc_{t+1} ⊙ f_{t+1} + dh_t ⊙ o_t (1 − τ_t²)
        dpre_t = [dc_t g_t i_t(1−i_t), dc_t c_{t−1} f_t(1−f_t), dc_t i_t (1−g_t²), dh_t τ_t o_t(1−o_t)]
        dW_hh = Σ_t dpre_tᵀ h_{t−1},  dW_ih = Σ_t dpre_tᵀ s_t,  db = Σ_t dpre_t
    """
    s = time_first(batch.inputs)
    T, K, B, _ = s.shape
    W_hh = params["W_hh"]  # [K, 4N, N]
    N = W_hh.shape[2]
    Wt = W_hh.transpose(1, 2).contiguous()
    gates = _project(s, params["W_ih"], params["b"])  # pre-activations, then i, f, g, o in place
    hs = s.new_empty(T + 1, K, B, N)  # hs[t] = h_t, h_0 = 0
    cs = s.new_empty(T + 1, K, B, N)
    tau = s.new_empty(T, K, B, N)  # tanh(c_t)
    hs[0] = 0
    cs[0] = 0
    for t in range(T):
        pre = gates[t].baddbmm_(hs[t], Wt)
        i = torch.sigmoid_(pre[..., :N])
        f = torch.sigmoid_(pre[..., N : 2 * N])
        g = torch.tanh_(pre[..., 2 * N : 3 * N])
        o = torch.sigmoid_(pre[..., 3 * N :])
        c = torch.mul(f, cs[t], out=cs[t + 1]).addcmul_(i, g)
        torch.mul(o, torch.tanh(c, out=tau[t]), out=hs[t + 1])
    act = Activity(hs)
    task_loss, tcr, dr, dy = readout_and_loss(act, batch, params, lambdas)
    grads = _readout_grads(dy, act.r)
    i, f, g, o = gates.split(N, dim=-1)
    dpre = torch.empty_like(gates)
    dW_hh = s.new_zeros(K, 4 * N, N)
    dW_ih = s.new_zeros(K, 4 * N, s.shape[-1])
    dh = s.new_zeros(K, B, N)
    dc = s.new_zeros(K, B, N)
    for t in range(T - 1, -1, -1):
        dh = dr[t] if t == T - 1 else dr[t].baddbmm_(dpre[t + 1], W_hh)
        # dc_t = dc_{t+1} f_{t+1} + dh_t o_t (1 − τ_t²)
        do_tau = o[t] * (1 - tau[t] * tau[t])
        dc = dh * do_tau if t == T - 1 else torch.addcmul(dc * f[t + 1], dh, do_tau)
        di, df, dg, do = dpre[t].split(N, dim=-1)
        torch.mul(dc, g[t], out=di).mul_(i[t] * (1 - i[t]))
        torch.mul(dc, cs[t], out=df).mul_(f[t] * (1 - f[t]))
        torch.mul(dc, i[t], out=dg).mul_(1 - g[t] * g[t])
        torch.mul(dh, tau[t], out=do).mul_(o[t] * (1 - o[t]))
        dW_hh.baddbmm_(dpre[t].transpose(1, 2), hs[t])
        dW_ih.baddbmm_(dpre[t].transpose(1, 2), s[t])
    grads["W_hh"] = dW_hh
    grads["W_ih"] = dW_ih
    grads["b"] = dpre.sum(dim=(0, 2))
    return StepResult(task_loss, tcr, grads, act.variance())


PASSES = {"leaky": "leaky_pass", "rank1": "leaky_pass", "plrnn": "plrnn_pass", "lstm": "lstm_pass"}
