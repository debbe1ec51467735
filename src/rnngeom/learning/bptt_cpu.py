"""Hand-written BPTT of the leaky, rank-one and PLRNN networks on a CPU in NumPy, network by network.

The same equations as the torch passes in ``bptt.py`` (their docstrings state the forward and backward
recursions), for one member with 2-D arrays. Why NumPy: at the sizes we train (N 32-128, batch 64) a time
step is a few microseconds of arithmetic and the cost is per-call overhead, memory traffic and the
elementwise functions. NumPy calls cost ~1-2 µs where torch's cost ~5-8 µs, and NumPy's SIMD tanh was 7x
faster than torch's on the CPU we measured (``python -m benchmarks --only training`` compares this path with
``torch.nn.RNN`` / ``nn.LSTM``). Three things keep it fast, all measured:

* few calls per time step (leaky: a matrix product, an add and a tanh forward, the same backward), into
  time-first arrays, so that step t is one contiguous block;
* one scratch workspace per rule (``Scratch``), reused every iteration: a fresh array over ~128 kB comes
  from the kernel as new pages, and touching them cost more than the arithmetic (the LSTM pass ran 2x
  slower with fresh arrays);
* inputs carry a column of ones, so an input matrix and its bias are one matrix product (and their
  gradients another), and operands are contiguous and full-sized (a broadcast [N] factor multiplies ~2.5x
  slower than a [B, N] one).

With ``time_loop`` compiled (``rnngeom.learning.compiled``, the default where a C compiler works), the
time loops, the loss and TCR gradient, the weight-gradient products, the activity variance and the time-first
copies run in C (``kernels/recurrence.h``): the same equations, one call per loop instead of a few per time
step; the NumPy code below stays as the fallback and as the second implementation the tests compare against.

Compiled, the LSTM is C throughout (``lstm_compiled``). With the NumPy loops (``time_loop: numpy``) its
recurrence goes through torch's fused kernel (``lstm_member``): a NumPy LSTM pass written like the others ran
at 0.8x of that kernel (measured side by side), its four gates' elementwise work being too large for call
overhead to matter; its readout, losses and their gradients are the NumPy code here. The parameters,
gradients and the optimizer stay torch tensors (shared memory).
``tests/test_learning_bptt.py``
checks every pass against autograd through the model files in float64.
"""

from __future__ import annotations

import numpy as np
import torch

from rnngeom.learning import Batch, StepResult
from rnngeom.learning.compiled import loops as compiled_loops

CPU_ARCHS = ("leaky", "rank1", "plrnn")  # the NumPy passes; the LSTM: lstm_member


class Scratch:
    """Named work arrays, allocated once per shape and reused (their contents are garbage on return)."""

    def __init__(self):
        self._arrays: dict[str, np.ndarray] = {}
        self._rows: dict[str, tuple[np.ndarray, list]] = {}
        self._views_key: tuple | None = None  # which tensors self._views belong to
        self._views: dict[str, np.ndarray] = {}

    def __call__(self, name: str, shape: tuple, dtype) -> np.ndarray:
        a = self._arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._arrays[name] = np.empty(shape, dtype=dtype)
        return a

    def rows(self, name: str) -> list[np.ndarray]:
        """Views of the named work array's rows a[0], a[1], ... (made once per array: indexing a[t] anew
        costs ~0.3 µs, and a time step used four to six of them, ~10 % of a quick iteration)."""
        a = self._arrays[name]
        cached = self._rows.get(name)
        if cached is None or cached[0] is not a:
            cached = self._rows[name] = (a, list(a))
        return cached[1]

    def views(self, params: dict) -> dict:
        """NumPy views of torch tensors (sharing memory: they follow in-place updates), made once per set
        of tensors (making them cost ~40 µs per iteration)."""
        key = tuple((n, id(v), v.data_ptr()) for n, v in params.items())
        if self._views_key != key:
            self._views_key = key
            self._views = {n: v.detach().numpy() for n, v in params.items()}
        return self._views

    def off_diagonal(self, n: int, dtype) -> np.ndarray:
        """1 − I [n, n], made once (making it cost ~50 µs per member and iteration)."""
        a = self._arrays.get("off_diagonal")
        if a is None or a.shape != (n, n) or a.dtype != dtype:
            a = self._arrays["off_diagonal"] = 1.0 - np.eye(n, dtype=dtype)
        return a

    def full(self, name: str, row: np.ndarray, n_rows: int) -> np.ndarray:
        """``row`` repeated on ``n_rows`` rows, contiguous (a full operand for per-step products)."""
        a = self(name, (n_rows, row.shape[0]), row.dtype)
        a[:] = row
        return a


def _time_first(x: torch.Tensor, out: np.ndarray, compiled=None) -> np.ndarray:
    """[B, T, n] tensor into ``out`` [T, B, n(+1)]; a column beyond n is set to ones (the bias's input)."""
    a = x.detach().numpy()
    if compiled is not None and a.dtype == out.dtype:  # NumPy's copy of a 3-wide axis: ~60 µs (measured)
        return compiled.time_first(np.ascontiguousarray(a), out)
    n = a.shape[2]
    out[:, :, :n] = a.transpose(1, 0, 2)
    if out.shape[2] > n:
        out[:, :, n:] = 1
    return out


def _flat(x: np.ndarray) -> np.ndarray:
    """[T, B, n] -> [T·B, n] (a view)."""
    return x.reshape(-1, x.shape[-1])


def _column_sums(x: np.ndarray) -> np.ndarray:
    """Σ over every axis but the last (a matrix-vector product: ~10x faster than ndarray.sum here)."""
    flat = _flat(x)
    return np.ones(flat.shape[0], dtype=x.dtype) @ flat


def _loss_and_activity_grad(work: Scratch, r: np.ndarray, Bo, bo, targets, mask, lam: float, compiled=None):
    """Readout, masked MSE and TCR of activity r [T, B, N], and dL/dr (the direct part: readout and λ·TCR;
    rnngeom.losses and rnngeom.tcr state the same formulas for torch tensors); ``compiled``: in C.
    targets, mask: [T, B, O] time-first, or, compiled, [B, T, O] as in the minibatch (read in place).

    Returns (task_loss, tcr, dL/dr [T, B, N] (a scratch array), dL/dy [T, B, O])."""
    T, B, N = r.shape
    if compiled is not None:
        ry, dy = work("err", (T, B, targets.shape[2]), r.dtype), work("dy", (T, B, targets.shape[2]), r.dtype)
        np.matmul(_flat(r), np.ascontiguousarray(Bo.T), out=_flat(ry))
        dr = work("dr", r.shape, r.dtype)
        task_loss, tcr = compiled.loss_grad(r, ry, Bo, bo, targets, mask, lam, dy, dr)
        return task_loss, tcr, dr, dy
    err = work("err", targets.shape, r.dtype)
    np.matmul(_flat(r), np.ascontiguousarray(Bo.T), out=_flat(err))
    err += bo
    err -= targets  # y − y*
    dy = work("dy", targets.shape, r.dtype)
    np.multiply(err, mask, out=dy)  # m ⊙ (y − y*)
    n_scored = max(float(mask.sum()), 1.0)
    task_loss = float(np.vdot(dy, err)) / n_scored
    dy *= np.asarray(2.0 / n_scored, dtype=r.dtype)  # 2 m ⊙ (y − y*) / Σ m
    dr = work("dr", r.shape, r.dtype)
    np.matmul(_flat(dy), Bo, out=_flat(dr))
    if T < 2:
        return task_loss, 0.0, dr, dy
    d = work("diff", (T - 1, B, N), r.dtype)
    np.subtract(r[1:], r[:-1], out=d)
    tcr = float(np.vdot(d, d)) / d.size
    if lam != 0.0:
        d *= np.asarray(2.0 * lam / d.size, dtype=r.dtype)  # λ ∂TCR/∂r: + at the later end, − at the earlier
        dr[1:] += d
        dr[:-1] -= d
    return task_loss, tcr, dr, dy


def _activity_variance(work: Scratch, r: np.ndarray, compiled=None) -> float:
    """Variance of each unit over batch and time, mean over units (as rnngeom.learning.activity_variance;
    two-pass, so exact to float32 rounding of the centred values however small the variance)."""
    if compiled is not None:
        return compiled.column_variance(r)
    flat = _flat(r)
    centred = work("centred", flat.shape, r.dtype)
    np.subtract(flat, _column_sums(flat) / flat.shape[0], out=centred)
    return float(np.vdot(centred, centred)) / centred.size


def _sum_outer(g: np.ndarray, h: np.ndarray, compiled=None) -> np.ndarray:
    """Σ over time and batch of g_tᵀ h_t ([n_g, n_h], a weight gradient): one product, in C if compiled."""
    return _flat(g).T @ _flat(h) if compiled is None else compiled.sum_outer(g, h)


def _readout_grads(dy: np.ndarray, r: np.ndarray, compiled=None) -> dict:
    return {"readout.weight": _sum_outer(dy, r, compiled), "readout.bias": _column_sums(dy)}


def _input_grads(G: np.ndarray, s1: np.ndarray, scale=None, compiled=None) -> tuple[np.ndarray, np.ndarray]:
    """(dW_in, db) = scale · Σ_t g_tᵀ [s_t, 1]: one matrix product; G [T, B, N], s1 [T, B, n_in + 1]."""
    if compiled is not None:  # as (Σ_t [s_t, 1]ᵀ g_t)ᵀ: the compiled product's fast side is the long one
        d = np.ascontiguousarray(compiled.sum_outer(s1, G).T)
    else:
        d = _sum_outer(G, s1)
    if scale is not None:
        d *= scale
    return d[:, :-1], d[:, -1].copy()


def leaky_member(
    work: Scratch, p: dict, s1, targets, mask, lam: float, alpha: float, rank_one: bool, compiled=None
):
    """x_t = (1-α) x_{t-1} + α (W tanh(x_{t-1}) + W_in s_t + b),  r_t = tanh(x_t)  (bptt.leaky_bptt).

    s1 [T, B, n_in + 1]: the inputs with a column of ones; targets, mask: as _loss_and_activity_grad
    takes them."""
    T, B, _ = s1.shape
    dtype = s1.dtype
    if rank_one:
        m, n = p["m"], p["n"]
        N = m.shape[0]
        W = np.outer(m, n) / np.asarray(N, dtype=dtype)
    else:
        W = p["W"]
        N = W.shape[0]
    a = np.asarray(alpha, dtype=dtype)
    leak = np.asarray(1.0 - alpha, dtype=dtype)
    Wt_a = np.ascontiguousarray(W.T) * a  # α Wᵀ
    drive = np.concatenate([p["W_in"].T, p["b"][None]]) * a  # α [W_inᵀ; b]
    xs = work("x", (T, B, N), dtype)  # α (W_in s_t + b), then x_t in place
    np.matmul(_flat(s1), drive, out=_flat(xs))
    rs = work("r", (T + 1, B, N), dtype)  # rs[t] = r_t, r_0 = tanh(0) = 0
    rs[0] = 0
    buf = work("step", (B, N), dtype)
    if compiled is not None:  # the same loop in C (compiled.py)
        compiled.leaky_forward(xs, rs, Wt_a, 1.0 - alpha, alpha != 1.0, buf)
    else:
        x_t, r_t = work.rows("x"), work.rows("r")
        np.tanh(x_t[0], out=r_t[1])  # r_0 = 0: no recurrent input at the first step
        for t in range(1, T):
            x = x_t[t]
            np.dot(r_t[t], Wt_a, out=buf)
            x += buf
            if alpha != 1.0:
                np.multiply(x_t[t - 1], leak, out=buf)
                x += buf
            np.tanh(x, out=r_t[t + 1])
    r = rs[1:]
    task_loss, tcr, gx, dy = _loss_and_activity_grad(
        work, r, p["readout.weight"], p["readout.bias"], targets, mask, lam, compiled
    )

    # g^x_t = φ'(x_t) ⊙ (dL/dr_t + α g^x_{t+1} W) + (1-α) g^x_{t+1}, overwriting dL/dr_t; φ' = 1 − r²
    Wa = W * a
    if compiled is not None:
        compiled.leaky_backward(gx, r, Wa, 1.0 - alpha, alpha != 1.0, buf)
    else:
        dphi = work("dphi", (T, B, N), dtype)
        np.multiply(r, r, out=dphi)
        np.subtract(1, dphi, out=dphi)
        g_t, dphi_t = work.rows("dr"), work.rows("dphi")  # gx is the "dr" work array
        g_t[T - 1] *= dphi_t[T - 1]
        for t in range(T - 2, -1, -1):
            g = g_t[t]
            np.dot(g_t[t + 1], Wa, out=buf)
            g += buf
            g *= dphi_t[t]
            if alpha != 1.0:
                np.multiply(g_t[t + 1], leak, out=buf)
                g += buf
    dW = _sum_outer(gx, rs[:-1], compiled) * a
    grads = _readout_grads(dy, r, compiled)
    grads["W_in"], grads["b"] = _input_grads(gx, s1, a, compiled)
    if rank_one:
        grads["m"] = dW @ n / np.asarray(N, dtype=dtype)
        grads["n"] = dW.T @ m / np.asarray(N, dtype=dtype)
    else:
        grads["W"] = dW
    return task_loss, tcr, grads, _activity_variance(work, r, compiled)


def plrnn_member(work: Scratch, p: dict, s1, targets, mask, lam: float, compiled=None):
    """z_t = a ⊙ z_{t-1} + W̃ relu(z_{t-1}) + h + C s_t,  r_t = z_t  (bptt.plrnn_bptt).

    s1 [T, B, n_in + 1]: the inputs with a column of ones; targets, mask: as _loss_and_activity_grad
    takes them."""
    T, B, _ = s1.shape
    dtype = s1.dtype
    N = p["a"].shape[0]
    off_diag = work.off_diagonal(N, dtype)
    Wm = p["W"] * off_diag
    Wt = np.ascontiguousarray(Wm.T)
    if compiled is None:  # operands of the NumPy loops only
        a_full = work.full("a", p["a"], B)
        zero = work.full(
            "zero", np.zeros(N, dtype=dtype), B
        )  # full-sized: a 0-d operand made max() 2x slower
    zs = work("z", (T, B, N), dtype)  # C s_t + h, then z_t in place
    np.matmul(_flat(s1), np.concatenate([p["C"].T, p["h"][None]]), out=_flat(zs))
    relu = work("relu", (T + 1, B, N), dtype)  # relu[t] = relu(z_t), z_0 = 0
    relu[0] = 0
    buf = work("step", (B, N), dtype)
    if compiled is not None:  # the same loop in C (compiled.py)
        compiled.plrnn_forward(zs, relu, Wt, p["a"], buf)
    else:
        z_t, relu_t = work.rows("z"), work.rows("relu")
        np.maximum(z_t[0], zero, out=relu_t[1])
        for t in range(1, T):
            z = z_t[t]
            np.dot(relu_t[t], Wt, out=buf)
            z += buf
            np.multiply(z_t[t - 1], a_full, out=buf)
            z += buf
            np.maximum(z, zero, out=relu_t[t + 1])
    task_loss, tcr, gz, dy = _loss_and_activity_grad(
        work, zs, p["readout.weight"], p["readout.bias"], targets, mask, lam, compiled
    )

    # g_t = dL/dr_t + a ⊙ g_{t+1} + 1[z_t > 0] ⊙ (g_{t+1} W̃), overwriting dL/dr_t
    if compiled is not None:
        compiled.plrnn_backward(gz, zs, Wm, p["a"], buf)
    else:
        active = work("active", (T, B, N), dtype)
        np.greater(zs, zero[None], out=active)  # a float mask multiplies ~2.5x faster than a boolean one
        g_t, active_t = work.rows("dr"), work.rows("active")  # gz is the "dr" work array
        for t in range(T - 2, -1, -1):
            g, g_next = g_t[t], g_t[t + 1]
            np.dot(g_next, Wm, out=buf)
            buf *= active_t[t]
            g += buf
            np.multiply(g_next, a_full, out=buf)
            g += buf
    grads = _readout_grads(dy, zs, compiled)
    gz_z = work("gz_z", (T - 1, B, N), dtype)
    grads["a"] = _column_sums(np.multiply(gz[1:], zs[:-1], out=gz_z))  # z_0 = 0
    grads["W"] = _sum_outer(gz, relu[:-1], compiled) * off_diag
    grads["C"], grads["h"] = _input_grads(gz, s1, None, compiled)
    return task_loss, tcr, grads, _activity_variance(work, zs, compiled)


def lstm_member(work: Scratch, p: dict, s1, targets, mask, lam: float, compiled=None):
    """The LSTM (lstm.py) through torch's fused LSTM kernel (``torch.lstm``, what ``nn.LSTM`` calls): the same
    gates in the same row order (i, f, g, o), h_0 = c_0 = 0, our bias b as its input bias and a zero hidden
    bias. Only the recurrence goes through autograd: the readout, masked MSE and TCR and their gradient dL/dh
    are the NumPy code every other architecture uses (``_loss_and_activity_grad``), and the kernel's backward
    gets dL/dh as its output gradient. That keeps autograd's graph to the one fused op: ~0.5 ms less per
    quick iteration than autograd through readout and losses too (measured), which is what beats nn.LSTM.

    p: NumPy views of the member's parameters (torch tensors share their memory); s1 [T, B, n_in + 1].
    ``compiled``: the whole pass in C instead (``lstm_compiled``)."""
    if compiled is not None:
        return lstm_compiled(work, p, s1, targets, mask, lam, compiled)
    weights = [torch.from_numpy(p[n]).requires_grad_(True) for n in ("W_ih", "W_hh", "b")]
    T, B, _ = s1.shape
    N = p["W_hh"].shape[1]
    x = torch.from_numpy(np.ascontiguousarray(s1[:, :, :-1]))  # time-first [T, B, n_in]
    h0 = x.new_zeros(1, B, N)
    with torch.enable_grad():
        # (input, (h_0, c_0), weights, has_biases, num_layers, dropout, train, bidirectional, batch_first)
        h = torch.lstm(
            x, (h0, h0), [*weights, weights[2].new_zeros(4 * N)], True, 1, 0.0, True, False, False
        )[0]
    r = h.detach().numpy()  # [T, B, N]
    task_loss, tcr, dr, dy = _loss_and_activity_grad(
        work, r, p["readout.weight"], p["readout.bias"], targets, mask, lam
    )
    g = torch.autograd.grad(h, weights, grad_outputs=torch.from_numpy(dr))
    grads = {n: gn.numpy() for n, gn in zip(("W_ih", "W_hh", "b"), g)}
    grads.update(_readout_grads(dy, r))
    return task_loss, tcr, grads, _activity_variance(work, r)


def lstm_compiled(work: Scratch, p: dict, s1, targets, mask, lam: float, compiled):
    """The LSTM (lstm.py) forward and backward in C (kernels/recurrence.h: lstm_forward, lstm_backward), the
    readout, losses and weight gradients as for every other architecture. h_0 = c_0 = 0."""
    T, B, _ = s1.shape
    dtype = s1.dtype
    W_hh = p["W_hh"]
    N = W_hh.shape[1]
    gates = work("gates", (T, B, 4 * N), dtype)  # W_ih s_t + b, then the activated gates
    np.matmul(_flat(s1), np.concatenate([p["W_ih"].T, p["b"][None]]), out=_flat(gates))
    h, c, tc = (work(name, (T, B, N), dtype) for name in ("h", "c", "tanh_c"))
    compiled.lstm_forward(gates, h, c, tc, np.ascontiguousarray(W_hh.T), work("step4", (B, 4 * N), dtype))
    task_loss, tcr, dh, dy = _loss_and_activity_grad(
        work, h, p["readout.weight"], p["readout.bias"], targets, mask, lam, compiled
    )
    dgates = work("dgates", (T, B, 4 * N), dtype)
    buf, dc = work("step", (B, N), dtype), work("dc", (B, N), dtype)
    compiled.lstm_backward(dh, gates, c, tc, W_hh, dgates, buf, dc)
    grads = _readout_grads(dy, h, compiled)
    grads["W_hh"] = _sum_outer(dgates[1:], h[:-1], compiled)  # h_0 = 0: step 0 adds nothing
    grads["W_ih"], grads["b"] = _input_grads(dgates, s1, None, compiled)
    return task_loss, tcr, grads, _activity_variance(work, h, compiled)


# A diverging member overflows to inf/NaN: the trainer detects it and stops that member cleanly.
@np.errstate(over="ignore", invalid="ignore")
def cpu_bptt(
    work: Scratch,
    arch: str,
    params: dict,
    batch: Batch,
    lambdas: torch.Tensor,
    alpha: float = 1.0,
    compiled: bool = False,
) -> StepResult:
    """Every member's gradients through the NumPy pass, one member at a time (members never interact);
    ``compiled``: the time loops in C (rnngeom.learning.compiled), else in NumPy."""
    K, B, T, n_in = batch.inputs.shape
    arrays = work.views(params)  # [K, ...] NumPy views of the (torch) parameters
    np_dtype = next(iter(arrays.values())).dtype
    time_loops = compiled_loops(np_dtype) if compiled else None
    n_out = batch.targets.shape[-1]
    losses, tcrs, variances, grads = [], [], [], {n: [] for n in params}
    for k in range(K):
        p = {n: v[k] for n, v in arrays.items()}
        s1 = _time_first(batch.inputs[k], work("inputs", (T, B, n_in + 1), np_dtype), time_loops)
        targets, mask = batch.targets[k].detach().numpy(), batch.mask[k].detach().numpy()
        if time_loops is not None and targets.dtype == mask.dtype == np_dtype:
            # the compiled loss reads them batch-first, in place (_loss_and_activity_grad)
            targets, mask = np.ascontiguousarray(targets), np.ascontiguousarray(mask)
        else:
            targets = _time_first(batch.targets[k], work("targets", (T, B, n_out), np_dtype), time_loops)
            mask = _time_first(batch.mask[k], work("mask", (T, B, n_out), np_dtype), time_loops)
        lam = float(lambdas[k])
        if arch == "plrnn":
            out = plrnn_member(work, p, s1, targets, mask, lam, time_loops)
        elif arch == "lstm":
            out = lstm_member(work, p, s1, targets, mask, lam, time_loops)
        else:
            out = leaky_member(work, p, s1, targets, mask, lam, alpha, arch == "rank1", time_loops)
        losses.append(out[0])
        tcrs.append(out[1])
        variances.append(out[3])
        for n, g in out[2].items():
            grads[n].append(g)
    return StepResult(
        torch.from_numpy(np.array(losses, dtype=np_dtype)),
        torch.from_numpy(np.array(tcrs, dtype=np_dtype)),
        {n: torch.from_numpy(g[0][None] if K == 1 else np.stack(g)) for n, g in grads.items()},
        torch.from_numpy(np.array(variances, dtype=np.float64)),
    )


__all__ = ["CPU_ARCHS", "Scratch", "cpu_bptt", "leaky_member", "lstm_compiled", "lstm_member", "plrnn_member"]
