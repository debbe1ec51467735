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
from rnngeom.tcr import tcr_time_first


def time_first(x: torch.Tensor) -> torch.Tensor:
    """[K, B, T, n] -> [T, K, B, n], contiguous."""
    return x.permute(2, 0, 1, 3).contiguous()


def _project(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """x Wᵀ (+ b) per member for every step: x [T, K, B, n], W [K, m, n], b [K, m] -> [T, K, B, m], one
    batched product per step (a broadcast product over all steps runs T·K tiny products, several times
    slower)."""
    T, K, B, _ = x.shape
    Wt = W.transpose(1, 2).contiguous()
    y = x.new_empty(T, K, B, W.shape[1])
    for t in range(T):
        if b is None:
            torch.bmm(x[t], Wt, out=y[t])
        else:
            torch.baddbmm(b[:, None, :], x[t], Wt, out=y[t])
    return y


def _sum_steps_and_trials(x: torch.Tensor) -> torch.Tensor:
    """Σ over time and batch of time-first x [T, K, B, n] -> [K, n] (the leading axis first: fast)."""
    return x.sum(0).sum(1)


class Activity:
    """The activity r_1..r_T (time-first) every pass hands the shared loss, and its variance, whose sums the
    forward loop accumulates while each step is in cache."""

    def __init__(self, rs: torch.Tensor):
        self.rs = rs  # [T + 1, K, B, N], rs[0] = r_0 = 0
        self.r = rs[1:]
        self._s1 = torch.zeros_like(rs[0])  # Σ_t r_t        [K, B, N]
        self._s2 = torch.zeros_like(rs[0])  # Σ_t r_t²

    def add_step(self, r_t: torch.Tensor) -> None:
        self._s1.add_(r_t)
        self._s2.addcmul_(r_t, r_t)

    def variance(self) -> torch.Tensor:
        """[K] variance of each unit's activity over batch and time, averaged over units (float64 from the
        float32 sums: enough for a collapse towards a fixed point, where it matters)."""
        T, K, B, N = self.r.shape
        n = T * B
        s1, s2 = self._s1.double().sum(1), self._s2.double().sum(1)  # [K, N]
        return ((s2 - s1 * s1 / n) / n).clamp_min(0.0).mean(dim=1)


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
    tcr = tcr_time_first(r, lambdas, out=dr, pair_weight=batch.pair_weight("time_first"))  # dr += λ ∂TCR/∂r
    return task_loss, tcr, dr, dy


def _readout_grads(dy: torch.Tensor, r: torch.Tensor) -> dict:
    """dL/dB = Σ_t dy_tᵀ r_t, dL/db_out = Σ_t dy_t (per member)."""
    dB = torch.bmm(dy[0].transpose(1, 2), r[0])
    for t in range(1, dy.shape[0]):
        dB.baddbmm_(dy[t].transpose(1, 2), r[t])
    return {"readout.weight": dB, "readout.bias": _sum_steps_and_trials(dy)}


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
    Win_a = (alpha * params["W_in"]).transpose(1, 2).contiguous()  # α W_inᵀ
    b_a = (alpha * params["b"])[:, None, :]
    rs = s.new_empty(T + 1, K, B, N)
    rs[0] = 0  # r_0 = tanh(x_0) = 0
    xs = s.new_empty(T, K, B, N) if alpha != 1.0 else None  # the leak needs x_{t-1}
    act = Activity(rs)
    for t in range(T):
        # x_{t+1} = α (W_in s_{t+1} + b + W r_t) (+ (1-α) x_t); at α = 1 it is built where r_{t+1} goes
        x = torch.baddbmm(b_a, s[t], Win_a, out=rs[t + 1] if xs is None else xs[t]).baddbmm_(rs[t], Wt_a)
        if xs is not None and t > 0:
            x.add_(xs[t - 1], alpha=1 - alpha)
        if noise is not None:
            x.add_(noise[t])
        r = x.tanh_() if xs is None else rs[t + 1].copy_(x).tanh_()  # (in place: faster than out=)
        act.add_step(r)
    return act


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
    one = r.new_ones(())
    dphi = torch.empty_like(r[0])
    # g^x_t overwrites dL/dr_t; φ'(x_t) = 1 − r_t² and the weight gradients are made while the step's blocks
    # are in cache
    gx[T - 1].mul_(torch.addcmul(one, r[T - 1], r[T - 1], value=-1, out=dphi))
    dW = torch.bmm(gx[T - 1].transpose(1, 2), rs[T - 1])
    dW_in = torch.bmm(gx[T - 1].transpose(1, 2), s[T - 1])
    for t in range(T - 2, -1, -1):
        g = gx[t].baddbmm_(gx[t + 1], Wa).mul_(torch.addcmul(one, r[t], r[t], value=-1, out=dphi))
        if alpha != 1.0:
            g.add_(gx[t + 1], alpha=1 - alpha)
        dW.baddbmm_(g.transpose(1, 2), rs[t])
        dW_in.baddbmm_(g.transpose(1, 2), s[t])
    dW.mul_(alpha)
    grads["W_in"] = dW_in.mul_(alpha)
    grads["b"] = _sum_steps_and_trials(gx).mul_(alpha)
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
    act = Activity(zs)
    for t in range(1, T + 1):
        z = zs[t].baddbmm_(relu[t - 1], Wt).addcmul_(a, zs[t - 1])
        torch.clamp_min(z, 0.0, out=relu[t])
        act.add_step(z)
    task_loss, tcr, gz, dy = readout_and_loss(act, batch, params, lambdas)
    grads = _readout_grads(dy, act.r)
    z = act.r
    dW = torch.bmm(gz[T - 1].transpose(1, 2), relu[T - 1])
    dC = torch.bmm(gz[T - 1].transpose(1, 2), s[T - 1])
    back = s.new_empty(K, B, N)
    for t in range(T - 2, -1, -1):
        g_next = gz[t + 1]
        # 1[z_t > 0] ⊙ (g_{t+1} W̃): relu'(z_t) is where relu(z_t) = relu[t + 1] is positive
        torch.bmm(g_next, Wm, out=back).mul_(relu[t + 1] > 0)
        g = gz[t].addcmul_(a, g_next).add_(back)
        dW.baddbmm_(g.transpose(1, 2), relu[t])
        dC.baddbmm_(g.transpose(1, 2), s[t])
    grads["a"] = _sum_steps_and_trials(gz[1:] * z[:-1])  # z_0 = 0
    grads["W"] = dW.mul_(off_diag)
    grads["h"] = _sum_steps_and_trials(gz)
    grads["C"] = dC
    return StepResult(task_loss, tcr, grads, act.variance())


# -- LSTM -------------------------------------------------------------------------------------------------
def lstm_pass(params: dict, batch: Batch, lambdas: torch.Tensor) -> StepResult:
    """LSTM (lstm.py), gates stacked (i, f, g, o).

    Backward, with carries dh (through W_hh) and dc (through the cell), τ_t = tanh(c_t):
        dh_t = dL/dr_t + dpre_{t+1} W_hh        dc_t = dc_{t+1} ⊙ f_{t+1} + dh_t ⊙ o_t (1 − τ_t²)
        dpre_t = [dc_t g_t, dc_t c_{t−1}, dc_t i_t, dh_t τ_t] ⊙ [i(1−i), f(1−f), 1 − g², o(1−o)]_t
        dW_hh = Σ_t dpre_tᵀ h_{t−1},  dW_ih = Σ_t dpre_tᵀ s_t,  db = Σ_t dpre_t
    """
    s = time_first(batch.inputs)
    T, K, B, _ = s.shape
    W_hh = params["W_hh"]  # [K, 4N, N]
    N = W_hh.shape[2]
    Wt = W_hh.transpose(1, 2).contiguous()
    gates = _project(s, params["W_ih"], params["b"])  # pre-activations, then i, f, g, o in place
    hs = s.new_empty(T + 1, K, B, N)  # hs[t] = h_t, h_0 = 0
    cs = s.new_empty(T + 1, K, B, N)  # cs[t] = c_t, c_0 = 0
    tau = s.new_empty(T, K, B, N)  # tanh(c_t)
    hs[0] = 0
    cs[0] = 0
    act = Activity(hs)
    for t in range(T):
        pre = gates[t].baddbmm_(hs[t], Wt)
        torch.sigmoid_(pre[..., : 2 * N])  # i, f
        torch.tanh_(pre[..., 2 * N : 3 * N])  # g
        torch.sigmoid_(pre[..., 3 * N :])  # o
        i, f, g, o = pre.split(N, dim=-1)
        torch.mul(f, cs[t], out=cs[t + 1]).addcmul_(i, g)
        act.add_step(torch.mul(o, torch.tanh(cs[t + 1], out=tau[t]), out=hs[t + 1]))
    task_loss, tcr, dr, dy = readout_and_loss(act, batch, params, lambdas)
    grads = _readout_grads(dy, act.r)
    dpre = torch.empty_like(gates)  # dL/dpre_t, and first the gates' derivatives in place
    slope = torch.empty_like(gates[0])  # [i(1−i), f(1−f), 1 − g², o(1−o)] of one step
    mult = torch.empty_like(gates[0])  # [dc g, dc c_{t−1}, dc i, dh τ] of one step
    dc_out = s.new_empty(K, B, N)  # o (1 − τ²)
    dW_hh = s.new_zeros(K, 4 * N, N)
    dW_ih = s.new_zeros(K, 4 * N, s.shape[-1])
    dc = s.new_zeros(K, B, N)
    for t in range(T - 1, -1, -1):
        G = gates[t]
        i, f, g, o = G.split(N, dim=-1)
        dh = dr[t] if t == T - 1 else dr[t].baddbmm_(dpre[t + 1], W_hh)
        torch.addcmul(o, o, tau[t] * tau[t], value=-1, out=dc_out)  # o (1 − τ²)
        if t < T - 1:
            dc.mul_(gates[t + 1][..., N : 2 * N])  # dc_{t+1} f_{t+1}
        dc.addcmul_(dh, dc_out)
        torch.addcmul(G, G, G, value=-1, out=slope)  # σ(1 − σ) for i, f, o ...
        torch.addcmul(torch.ones_like(g), g, g, value=-1, out=slope[..., 2 * N : 3 * N])  # ... 1 − g² for g
        m_i, m_f, m_g, m_o = mult.split(N, dim=-1)
        torch.mul(dc, g, out=m_i)
        torch.mul(dc, cs[t], out=m_f)
        torch.mul(dc, i, out=m_g)
        torch.mul(dh, tau[t], out=m_o)
        torch.mul(mult, slope, out=dpre[t])
        dW_hh.baddbmm_(dpre[t].transpose(1, 2), hs[t])
        dW_ih.baddbmm_(dpre[t].transpose(1, 2), s[t])
    grads["W_hh"] = dW_hh
    grads["W_ih"] = dW_ih
    grads["b"] = _sum_steps_and_trials(dpre)
    return StepResult(task_loss, tcr, grads, act.variance())


PASSES = {"leaky": "leaky_pass", "rank1": "leaky_pass", "plrnn": "plrnn_pass", "lstm": "lstm_pass"}
