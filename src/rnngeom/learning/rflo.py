"""RFLO: random-feedback local online learning (Murray 2019, eLife 8:e43299) for the leaky and rank-one RNNs.

Model (leaky.py; x_0 = 0, so r_0 = 0):

    x_t = (1-α) x_{t-1} + α (W r_{t-1} + W_in s_t + b),    r_t = tanh(x_t),    y_t = W_out r_t + b_out

Loss of one member, the same as the BPTT trainer's (task loss = masked MSE, TCR = mean over batch b, the T−1
time pairs and the N units):

    L = Σ_{b,t,o} m (y − y*)² / Σ m  +  λ · Σ_{b,t,i} (r_{t+1,i} − r_{t,i})² / (B (T−1) N)

Exact gradient (BPTT) needs ∂x_t/∂W, which obeys

    ∂x_i(t)/∂W_jk = (1-α) ∂x_i(t-1)/∂W_jk + α [δ_ij r_k(t-1) + Σ_l W_il φ'(x_l(t-1)) ∂x_l(t-1)/∂W_jk].

RFLO drops the last, non-local sum (credit assignment through the recurrent weights). What is left is an
eligibility trace that is local to the synapse i <- j:

    p_ij(t) = (1-α) p_ij(t-1) + α r_j(t-1),        ∂r_i(t)/∂W_ij ≈ φ'(x_i(t)) p_ij(t),   φ' = 1 − r².

(φ' multiplies at the time of the error, not inside the trace, because here the nonlinearity acts after the
leaky integration; in Murray's form it acts before, which puts φ'(u_i) inside his trace.) Since p_ij(t) does
not depend on i it is stored as one low-passed presynaptic rate per trial, r̄_j(t) = p_ij(t): the N² traces
collapse exactly into N. Likewise q_ik(t) = (1-α) q_ik(t-1) + α s_k(t) for W_in and
β_i(t) = (1-α) β_i(t-1) + α (= 1 − (1-α)^t) for b.

Errors on the rates: the task error at the output,

    e_t = ∂L_task/∂y_t = 2 m_t ⊙ (y_t − y*_t) / Σ m,

reaches the neurons through a fixed random feedback matrix B_fb [N, n_out] instead of W_outᵀ, and TCR enters
as a local error of each neuron that uses only that neuron's own rates,

    ε_i(t) = [B_fb e_t]_i + λ ∂TCR/∂r_i(t),
    ∂TCR/∂r_i(t) = 2 [(r_i(t) − r_i(t-1))·1{t>1} − (r_i(t+1) − r_i(t))·1{t<T}] / (B (T−1) N),

the exact partial derivative of the TCR term (online, the second part is applied one step late). The
pseudo-gradients, summed over trials b and steps t (the optimizer steps against them, as against a gradient):

    g_W[i,j]    = Σ_{b,t} φ'(x_i(t)) ε_i(t) p_ij(t)      g_W_in[i,k] = Σ_{b,t} φ'(x_i(t)) ε_i(t) q_ik(t)
    g_b[i]      = Σ_{b,t} φ'(x_i(t)) ε_i(t) β_i(t)
    g_W_out     = Σ_{b,t} e_t r_tᵀ,   g_b_out = Σ_{b,t} e_t     (exact: the readout gradient is local)

Rank-one RNN (W = m nᵀ/N): the chain rule on G = g_W gives g_m = G n / N, g_n = Gᵀ m / N.

With B_fb = W_outᵀ this is exactly the gradient of L through a graph in which the recurrent input W r_{t-1}
is treated as a constant input with respect to earlier parameters (tests/test_learning_rflo.py checks it).

Feedback matrix (reconstruction): B_fb[k] ~ N(0, feedback_scale²/N) entrywise, drawn once per member from a
torch.Generator seeded with a hash of (member seed, "rflo_feedback"), so it differs from the stream that
drew the initial weights but is reproducible from the seed alone (it is not part of the rule's state).

The model's private noise (noise_std > 0) is not supported: these rules run the dynamics themselves and
would need their own noise stream; every config uses noise_std = 0, so they raise ValueError instead.
"""

from __future__ import annotations

import hashlib
import inspect

import torch

from rnngeom.learning import (
    Batch,
    LearningRule,
    StepResult,
    activity_variance,
    register,
)
from rnngeom.learning.passes import leaky_forward, time_first
from rnngeom.losses import masked_mse, masked_mse_grad
from rnngeom.tcr import tcr_grad, tcr_penalty

LOCAL_ARCHS = ("leaky", "rank1")


# -- helpers shared with freeze_in.py ----------------------------------------------------------------------
def member_seed(seed: int, tag: str) -> int:
    """A 63-bit seed derived from (member seed, tag): independent streams for different uses of one seed."""
    digest = hashlib.sha256(f"{int(seed)}:{tag}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def model_hparams(model_spec: dict, rule_name: str) -> tuple[str, int, int, float]:
    """(arch, n_hidden, n_out, alpha) from a model spec; checks the architecture and that noise is off."""
    from rnngeom.models import MODELS  # lazy: keeps rnngeom.learning light to import

    arch = model_spec.get("arch")
    if arch not in LOCAL_ARCHS:
        raise ValueError(f"learning rule {rule_name!r} supports arch {list(LOCAL_ARCHS)}, not {arch!r}")
    defaults = {k: p.default for k, p in inspect.signature(MODELS[arch].__init__).parameters.items()}
    spec = {**defaults, **model_spec}  # a spec may leave out hyperparameters at their model default
    if float(spec["noise_std"]) > 0:
        raise ValueError(
            f"learning rule {rule_name!r} needs noise_std = 0 (got {spec['noise_std']}): it runs "
            f"the dynamics itself and has no noise stream of its own"
        )
    return arch, int(spec["n_hidden"]), int(spec["n_out"]), float(spec["alpha"])


def low_pass(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """ū_t = (1-α) ū_{t-1} + α u_t with ū_0 = 0, along dim 2 of u [K, B, T, D] (the eligibility traces)."""
    acc = torch.zeros_like(u[:, :, 0])
    out = []
    for t in range(u.shape[2]):
        acc = (1 - alpha) * acc + alpha * u[:, :, t]
        out.append(acc)
    return torch.stack(out, dim=2)


def run_dynamics(params: dict, inputs: torch.Tensor, arch: str, alpha: float) -> tuple[torch.Tensor, ...]:
    """Rates r [K, B, T, N] and outputs y [K, B, T, n_out] of every member, from x_0 = 0: the leaky (or
    rank-one) fast pass's forward (rnngeom.learning.passes.leaky_forward)."""
    r = leaky_forward(params, time_first(inputs), alpha, arch == "rank1").r.permute(1, 2, 0, 3)
    y = torch.einsum("kbtn,kon->kbto", r, params["readout.weight"]) + params["readout.bias"][:, None, None, :]
    return r, y


def local_gradients(
    params: dict,
    batch: Batch,
    lambdas: torch.Tensor,
    *,
    arch: str,
    alpha: float,
    feedback: torch.Tensor | None,
) -> StepResult:
    """RFLO pseudo-gradients (module docstring) of every member, vectorised over the leading dim K.

    ``feedback`` [K, N, n_out] is B_fb; None switches the task error off entirely (freeze-in): the neurons
    then learn from the local TCR error alone and the readout gets zero updates.
    """
    with torch.no_grad():
        r, y = run_dynamics(params, batch.inputs, arch, alpha)
        task_loss = masked_mse(y, batch.targets, batch.mask, member_dim=0)
        err_out = masked_mse_grad(y, batch.targets, batch.mask, member_dim=0)  # e_t = ∂L_task/∂y_t

        # ε_i(t) = λ_k ∂TCR/∂r_i(t), local to neuron i
        pairs = batch.pair_weight("member_first")
        err_r = lambdas.to(r)[:, None, None, None] * tcr_grad(r, member_dim=0, pair_weight=pairs)
        if feedback is not None:
            err_r = err_r + torch.einsum("kbto,kno->kbtn", err_out, feedback.to(r))
        delta = (1 - r**2) * err_r  # φ'(x_i(t)) ε_i(t)

        # The three traces in one pass: presynaptic rates r_{t-1} (r_0 = 0), inputs s_t and the constant 1.
        N, n_in = r.shape[-1], batch.inputs.shape[-1]
        r_prev = torch.cat([torch.zeros_like(r[:, :, :1]), r[:, :, :-1]], dim=2)
        traces = low_pass(torch.cat([r_prev, batch.inputs.to(r), torch.ones_like(r[..., :1])], dim=-1), alpha)
        p = traces[..., :N]  # p_ij(t) = r̄_j(t)
        q = traces[..., N : N + n_in]  # q_ik(t) = s̄_k(t)
        beta = traces[..., N + n_in]  # β(t) = 1 − (1-α)^t, [K, B, T]

        G = torch.einsum("kbti,kbtj->kij", delta, p)
        grads = {
            "W_in": torch.einsum("kbti,kbtj->kij", delta, q),
            "b": torch.einsum("kbti,kbt->ki", delta, beta),
        }
        if arch == "rank1":
            grads["m"] = torch.einsum("kij,kj->ki", G, params["n"]) / N
            grads["n"] = torch.einsum("kij,ki->kj", G, params["m"]) / N
        else:
            grads["W"] = G
        if feedback is not None:
            grads["readout.weight"] = torch.einsum("kbto,kbtn->kon", err_out, r)
            grads["readout.bias"] = err_out.sum(dim=(1, 2))
        else:
            grads["readout.weight"] = torch.zeros_like(params["readout.weight"])
            grads["readout.bias"] = torch.zeros_like(params["readout.bias"])
        missing = sorted(set(params) - set(grads))
        if missing:
            raise ValueError(f"RFLO has no update for parameter(s) {missing} of arch {arch!r}")
        return StepResult(
            task_loss=task_loss,
            tcr=tcr_penalty(r, member_dim=0, pair_weight=pairs),
            grads={name: grads[name] for name in params},
            activity_var=activity_variance(r),
        )


def feedback_matrices(seeds: list[int], n_hidden: int, n_out: int, scale: float) -> torch.Tensor:
    """[K, N, n_out] fixed random feedback, B_fb[k] ~ N(0, scale²/N), one generator per member seed."""
    mats = []
    for seed in seeds:  # one small draw per member at construction; the learning itself is vectorised
        gen = torch.Generator().manual_seed(member_seed(seed, "rflo_feedback"))
        mats.append(torch.randn(n_hidden, n_out, generator=gen) * (scale / n_hidden**0.5))
    return torch.stack(mats)


@register
class RFLO(LearningRule):
    """Random-feedback local online learning with TCR as a local error (module docstring).

    Settings:
        feedback_scale (1.0): std of the feedback entries times sqrt(N), B_fb ~ N(0, feedback_scale²/N).
    """

    name = "rflo"

    @classmethod
    def default_settings(cls) -> dict:
        return {"feedback_scale": 1.0}

    def __init__(
        self, model_spec: dict, members: list[dict], settings: dict | None = None, tcr_window: str = "all"
    ):
        super().__init__(model_spec, members, settings, tcr_window)
        self.arch, n_hidden, n_out, self.alpha = model_hparams(self.model_spec, self.name)
        scale = float(self.settings["feedback_scale"])
        self.feedback = feedback_matrices([int(m["seed"]) for m in self.members], n_hidden, n_out, scale)

    def gradients_for(self, params: dict, batch: Batch, lambdas: torch.Tensor, iteration: int) -> StepResult:
        return local_gradients(
            params, batch, lambdas, arch=self.arch, alpha=self.alpha, feedback=self.feedback
        )
