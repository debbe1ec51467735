"""Backpropagation through time (BPTT) of  L_k = masked MSE(y, y*) + λ_k · TCR(r)  for every ensemble member.

Small RNNs are dominated by per-operation framework overhead, not arithmetic. So for the three architectures
with simple equations the backward pass is written by hand, no autograd graph: here in torch (one batched
matmul per time step for all K members, in place on preallocated time-first tensors; what a GPU runs, and a
CPU with ``hand_written: true``), and in NumPy network by network on a CPU with ``hand_written: auto``
(``bptt_cpu.py``; NumPy's per-call cost and tanh are several times cheaper there, measured by
``benchmarks/``), their time loops compiled in C where a C compiler works (``time_loop``, ``compiled.py``).
On a CPU the LSTM runs in that C code too (``bptt_cpu.lstm_compiled``), or, with ``time_loop: numpy``,
through torch's fused LSTM kernel with autograd (faster than both hand-written passes, measured). Models with
noise use autograd on the model's own ``forward``, one member at a time (as does
``bptt: {hand_written: false}``, the reference). ``tests/test_learning_bptt.py``
checks every fast path against autograd through the model files (float64), so the model files stay the
single statement of each equation.

Notation (member index k and batch index omitted): inputs s_t, states x_t, activity r_t, outputs
y_t = B r_t + b_out for t = 1..T from x_0 = 0.  g^x_t = dL/dx_t, the total derivative.

Loss derivatives shared by all architectures (``rnngeom.losses.masked_mse_grad``, ``rnngeom.tcr.tcr_grad``):
    dL/dy_t = 2 m_t ⊙ (y_t − y*_t) / Σ m
    dL/dr_t (direct) = (dL/dy_t) B + 2λ/(B_size (T−1) N) · [(r_t − r_{t−1})·1{t>1} − (r_{t+1} − r_t)·1{t<T}]
"""

from __future__ import annotations

import torch

from rnngeom.learning import (
    Batch,
    LearningRule,
    StepResult,
    activity_variance,
    compiled,
    register,
)
from rnngeom.learning.bptt_cpu import CPU_ARCHS, Scratch, cpu_bptt
from rnngeom.losses import masked_mse, masked_mse_grad
from rnngeom.models import build_model
from rnngeom.tcr import tcr_grad, tcr_penalty

HAND_WRITTEN = ("leaky", "rank1", "plrnn", "lstm")


# Layout: the hand-written passes keep tensors time-first, [T, K, B, n], so that the state of step t is one
# contiguous block (x[t]); per-step operations on contiguous blocks are what makes the Python loop cheap.


def _time_first(x: torch.Tensor) -> torch.Tensor:
    """[K, B, T, n] -> [T, K, B, n], contiguous."""
    return x.permute(2, 0, 1, 3).contiguous()


def _sum_outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ over time and batch of a_tᵀ b_t per member: a [T, K, B, n], b [T, K, B, m] -> [K, n, m].

    Without copies of the time-first tensors (einsum permutes them, 3-20x slower, measured): one matrix
    product over (t, b) for K = 1, else one batched product per step accumulated in place (no [T, K, n, m]
    temporary: 2x faster than bmm + sum at paper size, K = 16, measured)."""
    T, K, B, n = a.shape
    if K == 1:
        return (a.reshape(T * B, n).T @ b.reshape(T * B, -1))[None]
    out = torch.bmm(a[0].transpose(1, 2), b[0])
    for t in range(1, T):
        out.baddbmm_(a[t].transpose(1, 2), b[t])
    return out


def _linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """x Wᵀ + b per member: x [T, K, B, n], W [K, m, n], b [K, m] -> [T, K, B, m]."""
    y = torch.matmul(x, W.transpose(1, 2)[None])
    return y if b is None else y + b[None, :, None, :]


def output_and_activity_grads(r: torch.Tensor, batch: Batch, params: dict, lambdas: torch.Tensor):
    """Readout, losses and dL/dr_t (direct part) from activity r [T, K, B, N].

    Returns (task_loss [K], tcr [K], dL/dr [T, K, B, N], grads of readout.weight and readout.bias).
    """
    Bo = params["readout.weight"]  # [K, O, N]
    y = _linear(r, Bo, params["readout.bias"])  # [T, K, B, O]
    targets, mask = batch.targets.permute(2, 0, 1, 3), batch.mask.permute(2, 0, 1, 3)
    task_loss = masked_mse(y, targets, mask, member_dim=1)
    dy = masked_mse_grad(y, targets, mask, member_dim=1)
    dr = torch.matmul(dy, Bo[None])
    pairs = batch.pair_weight("time_first")
    tcr = tcr_penalty(r, time_dim=0, member_dim=1, pair_weight=pairs)
    tcr_grad(r, time_dim=0, member_dim=1, weight=lambdas.to(r), out=dr, pair_weight=pairs)  # dr += λ ∂TCR/∂r
    grads = {"readout.weight": _sum_outer(dy, r), "readout.bias": dy.sum(dim=(0, 2))}
    return task_loss, tcr, dr, grads


def leaky_bptt(params: dict, batch: Batch, lambdas: torch.Tensor, alpha: float, rank_one: bool) -> StepResult:
    """x_t = (1-α) x_{t-1} + α (W tanh(x_{t-1}) + W_in s_t + b),  r_t = tanh(x_t)   (leaky.py, rank1.py).

    Backward:  g^x_t = φ'(x_t) ⊙ (dL/dr_t + α g^x_{t+1} W) + (1-α) g^x_{t+1},   φ' = 1 − r²
               dW = α Σ_t g^x_tᵀ r_{t-1},  dW_in = α Σ_t g^x_tᵀ s_t,  db = α Σ_t g^x_t
    Rank one (W = m nᵀ/N):  dm = dW n / N,  dn = dWᵀ m / N.
    """
    s = _time_first(batch.inputs)  # [T, K, B, n_in]
    T, K, B, _ = s.shape
    if rank_one:
        m, n = params["m"], params["n"]
        N = m.shape[1]
        W = m[:, :, None] * n[:, None, :] / N
    else:
        W = params["W"]
        N = W.shape[1]
    # Fewer, fused, in-place operations per time step (the cost is per-operation overhead and memory traffic,
    # not arithmetic): xs[t] starts as α (W_in s_t + b) and accumulates α W r_{t-1} in place.
    Wt_a = (alpha * W).transpose(1, 2).contiguous()  # α Wᵀ
    xs = _linear(s, params["W_in"], params["b"]).mul_(alpha)  # xs[t] = x_{t+1} once step t is done
    rs = s.new_empty(T + 1, K, B, N)  # rs[t] = r_t, r_0 = tanh(0) = 0
    rs[0] = 0
    for t in range(T):
        x = xs[t].baddbmm_(rs[t], Wt_a)  # α (W r_{t-1} + W_in s_t + b)
        if alpha != 1.0 and t > 0:
            x.add_(xs[t - 1], alpha=1 - alpha)
        torch.tanh(x, out=rs[t + 1])
    r = rs[1:]
    task_loss, tcr, dr, grads = output_and_activity_grads(r, batch, params, lambdas)

    # g^x_t = φ'(x_t) ⊙ (dL/dr_t + α g^x_{t+1} W) + (1-α) g^x_{t+1} overwrites dL/dr_t (a fresh tensor)
    dphi = torch.addcmul(r.new_ones(()), r, r, value=-1)  # φ' = 1 − r², one pass
    Wa = alpha * W
    gx = dr.contiguous()
    gx[T - 1].mul_(dphi[T - 1])
    for t in range(T - 2, -1, -1):
        gx[t].baddbmm_(gx[t + 1], Wa).mul_(dphi[t])
        if alpha != 1.0:
            gx[t].add_(gx[t + 1], alpha=1 - alpha)
    dW = alpha * _sum_outer(gx, rs[:-1])  # [K, N, N]: dW_ij = α Σ g_i r_{t-1,j}
    grads["W_in"] = alpha * _sum_outer(gx, s)
    grads["b"] = alpha * gx.sum(dim=(0, 2))
    if rank_one:
        grads["m"] = torch.bmm(dW, n[:, :, None])[:, :, 0] / N
        grads["n"] = torch.bmm(dW.transpose(1, 2), m[:, :, None])[:, :, 0] / N
    else:
        grads["W"] = dW
    return StepResult(task_loss, tcr, grads, activity_variance(r.transpose(0, 1)))


def plrnn_bptt(params: dict, batch: Batch, lambdas: torch.Tensor) -> StepResult:
    """z_t = a ⊙ z_{t-1} + W̃ relu(z_{t-1}) + h + C s_t,  r_t = z_t,  W̃ = W with zero diagonal  (plrnn.py).

    Backward:  g_t = dL/dr_t + a ⊙ g_{t+1} + 1[z_t > 0] ⊙ (g_{t+1} W̃)
               da = Σ_t g_t ⊙ z_{t-1},  dW = (Σ_t g_tᵀ relu(z_{t-1})) ⊙ offdiag,  dh = Σ_t g_t,
               dC = Σ_t g_tᵀ s_t
    """
    s = _time_first(batch.inputs)
    T, K, B, _ = s.shape
    a = params["a"][:, None, :]  # [K, 1, N]
    N = a.shape[2]
    off_diag = 1.0 - torch.eye(N, dtype=s.dtype, device=s.device)
    Wm = params["W"] * off_diag
    Wt = Wm.transpose(1, 2).contiguous()
    # In place (per-operation overhead and memory traffic dominate): zs[t] starts as C s_t + h and becomes
    # z_{t+1}; g_t then overwrites dL/dr_t.
    zs = _linear(s, params["C"], params["h"])
    relu = s.new_empty(T + 1, K, B, N)  # relu[t] = relu(z_t), z_0 = 0
    relu[0] = 0
    for t in range(T):
        z_next = zs[t].baddbmm_(relu[t], Wt)
        if t > 0:
            z_next.addcmul_(a, zs[t - 1])
        torch.clamp_min(z_next, 0.0, out=relu[t + 1])
    z = zs
    task_loss, tcr, dr, grads = output_and_activity_grads(z, batch, params, lambdas)

    active = (z > 0).to(s.dtype)
    gz = dr.contiguous()
    for t in range(T - 2, -1, -1):
        g_next = gz[t + 1]
        gz[t].addcmul_(a, g_next).addcmul_(active[t], torch.bmm(g_next, Wm))
    grads["a"] = (gz[1:] * z[:-1]).sum(dim=(0, 2))  # z_0 = 0
    grads["W"] = _sum_outer(gz, relu[:-1]) * off_diag
    grads["h"] = gz.sum(dim=(0, 2))
    grads["C"] = _sum_outer(gz, s)
    return StepResult(task_loss, tcr, grads, activity_variance(z.transpose(0, 1)))


def lstm_bptt(params: dict, batch: Batch, lambdas: torch.Tensor) -> StepResult:
    """LSTM (lstm.py): pre_t = W_ih s_t + W_hh h_{t-1} + b -> gates i, f, o = σ(.), g = tanh(.);
    c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t),  r_t = h_t.

    Backward, with carries dh (through W_hh) and dc (through the cell), τ_t = tanh(c_t):
        dh_t = dL/dr_t + dpre_{t+1} W_hh        dc_t = dc_{t+1} ⊙ f_{t+1} + dh_t ⊙ o_t (1 − τ_t²)
        dpre_t = [dc_t g_t i_t(1−i_t), dc_t c_{t−1} f_t(1−f_t), dc_t i_t (1−g_t²), dh_t τ_t o_t(1−o_t)]
        dW_hh = Σ_t dpre_tᵀ h_{t−1},  dW_ih = Σ_t dpre_tᵀ s_t,  db = Σ_t dpre_t
    """
    s = _time_first(batch.inputs)
    T, K, B, _ = s.shape
    W_hh = params["W_hh"]  # [K, 4N, N]
    N = W_hh.shape[2]
    Wt = W_hh.transpose(1, 2).contiguous()
    drive = _linear(s, params["W_ih"], params["b"])  # [T, K, B, 4N]
    hs = s.new_zeros(T + 1, K, B, N)  # hs[t] = h_t, h_0 = 0
    cs = s.new_zeros(T + 1, K, B, N)
    gates = s.new_empty(T, K, B, 4 * N)  # i, f, g, o after their nonlinearities
    for t in range(T):
        pre = torch.baddbmm(drive[t], hs[t], Wt)
        torch.sigmoid(pre, out=gates[t])
        gates[t, :, :, 2 * N : 3 * N] = torch.tanh(pre[..., 2 * N : 3 * N])
        i, f, g, o = gates[t].split(N, dim=-1)
        torch.addcmul(f * cs[t], i, g, out=cs[t + 1])
        torch.mul(o, torch.tanh(cs[t + 1]), out=hs[t + 1])
    h = hs[1:]
    task_loss, tcr, dr, grads = output_and_activity_grads(h, batch, params, lambdas)

    i, f, g, o = gates.split(N, dim=-1)
    tau = torch.tanh(cs[1:])
    dc_from_dh = o * (1 - tau * tau)
    factors = torch.cat([g * i * (1 - i), cs[:-1] * f * (1 - f), i * (1 - g * g)], dim=-1)  # x dc
    factor_o = tau * o * (1 - o)  # x dh
    dpre = torch.empty_like(gates)
    dh_rec = s.new_zeros(K, B, N)
    dc = s.new_zeros(K, B, N)
    for t in range(T - 1, -1, -1):
        dh = dr[t] + dh_rec
        dc = torch.addcmul(dc * f[t + 1] if t < T - 1 else dc, dh, dc_from_dh[t])
        torch.mul(dc.repeat(1, 1, 3), factors[t], out=dpre[t, :, :, : 3 * N])
        torch.mul(dh, factor_o[t], out=dpre[t, :, :, 3 * N :])
        dh_rec = torch.bmm(dpre[t], W_hh)
    grads["W_hh"] = _sum_outer(dpre, hs[:-1])
    grads["W_ih"] = _sum_outer(dpre, s)
    grads["b"] = dpre.sum(dim=(0, 2))
    return StepResult(task_loss, tcr, grads, activity_variance(h.transpose(0, 1)))


@register
class BPTT(LearningRule):
    """Exact gradients of the task loss plus λ·TCR through the whole trial (hand-written where possible)."""

    name = "bptt"

    # The hand-written LSTM pass loses to autograd once the network is large enough for arithmetic, not
    # per-operation overhead, to dominate (benchmarks/: 0.56x autograd at 128 units on CPU).
    LSTM_HAND_WRITTEN_MAX_UNITS = 64
    # time_loop "auto" compiles the leaky, rank-one and PLRNN loops up to this size: at 32 units the C loops
    # were 1.3-2.4x faster than the NumPy ones, at 128 (the paper size) 0.84-1.0x, BLAS's products there
    # beating ours (benchmarks/, side by side); 64 is unmeasured. The LSTM's C pass was faster at both.
    COMPILED_MAX_UNITS = 64

    @classmethod
    def default_settings(cls) -> dict:
        # hand_written: "auto": hand-written where it pays (measured); true: always; false: autograd
        # everywhere (the reference). time_loop: the NumPy pass's time loops compiled in C ("auto": where a
        # C compiler builds them, else NumPy; "compiled"; "numpy"; rnngeom.learning.compiled).
        return {"hand_written": "auto", "time_loop": "auto"}

    @staticmethod
    def cpu_path(arch: str, choice, noisy: bool) -> str | None:
        """The pass "auto" takes on a CPU: "numpy" (the leaky, rank-one and PLRNN passes, bptt_cpu.py) or
        "fused_lstm" (torch's LSTM kernel, bptt_cpu.lstm_member); None: the torch passes below. Both CPU
        passes go member by member (faster, measured)."""
        if choice != "auto":
            return None
        if arch == "lstm":
            return "fused_lstm"
        return "numpy" if arch in CPU_ARCHS and not noisy else None

    @classmethod
    def exact_cpu_ensemble(cls, run_settings: dict) -> bool:
        settings = {**cls.default_settings(), **run_settings["training"].get(cls.settings_key, {})}
        choice = settings["hand_written"]
        noisy = float(run_settings["model"].get("noise_std", 0.0)) > 0
        if run_settings["training"].get("tcr_window", "all") != "all":
            return False
        return cls.cpu_path(run_settings["arch"], choice, noisy) is not None

    def __init__(
        self, model_spec: dict, members: list[dict], settings: dict | None = None, tcr_window: str = "all"
    ):
        super().__init__(model_spec, members, settings, tcr_window)
        arch = self.model_spec["arch"]
        choice = self.settings["hand_written"]
        if choice not in ("auto", True, False):
            raise ValueError(f"bptt setting hand_written must be 'auto', true or false, got {choice!r}")
        noisy = float(self.model_spec.get("noise_std", 0.0)) > 0
        pays = arch != "lstm" or int(self.model_spec["n_hidden"]) <= self.LSTM_HAND_WRITTEN_MAX_UNITS
        self.hand_written = (
            arch in HAND_WRITTEN and not noisy and (choice is True or (choice == "auto" and pays))
        )
        # "auto" on a CPU: the leaky, rank-one and PLRNN passes in NumPy (bptt_cpu.py; faster, measured);
        # true: the torch pass below on any device (what a GPU runs, batched over members).
        # the NumPy and compiled CPU passes state TCR over every time pair only; a delay window goes through
        # the torch passes below
        path = self.cpu_path(arch, choice, noisy) if self.tcr_window == "all" else None
        self._numpy_on_cpu = path == "numpy"
        # Which time loop the NumPy pass runs ("compiled" or "numpy"), resolved once (provenance.json
        # records it): a "compiled" that cannot be built fails here, before any training.
        n_hidden = int(self.model_spec["n_hidden"])
        if path == "numpy" and self.settings["time_loop"] == "auto" and n_hidden > self.COMPILED_MAX_UNITS:
            self.time_loop = "numpy"
            self.time_loop_note = f"time_loop: auto, NumPy at {n_hidden} > {self.COMPILED_MAX_UNITS} units"
        elif path is not None:
            self.time_loop, self.time_loop_note = compiled.resolve(self.settings["time_loop"])
        else:
            self.time_loop, self.time_loop_note = "none", "no hand-written CPU pass (torch passes)"
        self._scratch = Scratch()
        # One module whose parameters are swapped for each member's (autograd path only).
        self._module = None if self.hand_written else build_model({**self.model_spec, "gain": 1.0})
        # "auto" on a CPU: the LSTM in C (time_loop compiled) or through torch's fused kernel.
        self._fused_lstm = path == "fused_lstm"

    def provenance(self) -> dict:
        return {"time_loop": self.time_loop, "time_loop_note": self.time_loop_note}

    def gradients_for(self, params: dict, batch: Batch, lambdas: torch.Tensor, iteration: int) -> StepResult:
        arch = self.model_spec["arch"]
        on_cpu = batch.inputs.device.type == "cpu"
        if self._numpy_on_cpu and on_cpu:
            alpha = float(self.model_spec.get("alpha", 1.0))
            return cpu_bptt(self._scratch, arch, params, batch, lambdas, alpha, self.time_loop == "compiled")
        if self._fused_lstm and on_cpu:  # C, or torch's fused LSTM kernel (bptt_cpu.lstm_member)
            return cpu_bptt(self._scratch, arch, params, batch, lambdas, 1.0, self.time_loop == "compiled")
        with torch.no_grad():
            if self.hand_written and arch == "plrnn":
                return plrnn_bptt(params, batch, lambdas)
            if self.hand_written and arch == "lstm":
                return lstm_bptt(params, batch, lambdas)
            if self.hand_written:
                return leaky_bptt(params, batch, lambdas, float(self.model_spec["alpha"]), arch == "rank1")
        return self._autograd(params, batch, lambdas)

    def _autograd(self, params: dict, batch: Batch, lambdas: torch.Tensor) -> StepResult:
        """Autograd through the model's own forward, one member at a time (the reference path)."""
        from torch.func import functional_call

        names = list(params)
        losses, tcrs, variances, grads = [], [], [], {n: [] for n in names}
        for k in range(self.n_members):
            member = {n: params[n][k].detach().requires_grad_(True) for n in names}
            out = functional_call(self._module, member, (batch.inputs[k],))
            task_loss = masked_mse(out.outputs, batch.targets[k], batch.mask[k])
            pairs = batch.pair_weight("member_first")
            tcr = tcr_penalty(out.activity, pair_weight=None if pairs is None else pairs[k])
            g = torch.autograd.grad(
                task_loss + lambdas[k].to(tcr) * tcr, [member[n] for n in names], allow_unused=True
            )
            for n, gn in zip(names, g):
                grads[n].append(torch.zeros_like(member[n]) if gn is None else gn)
            losses.append(task_loss.detach())
            tcrs.append(tcr.detach())
            variances.append(activity_variance(out.activity.detach()[None])[0])
        return StepResult(
            torch.stack(losses),
            torch.stack(tcrs),
            {n: torch.stack(v) for n, v in grads.items()},
            torch.stack(variances),
        )


__all__ = ["BPTT", "leaky_bptt", "lstm_bptt", "plrnn_bptt"]
