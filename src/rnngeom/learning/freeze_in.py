"""Freeze-in training: TCR as the only, local learning signal (claim C11, docs/claims.md).

The neurons learn from the local TCR error alone, with the RFLO eligibility traces of rflo.py (no task error,
no feedback matrix; the readout gets zero updates):

    ε_i(t) = λ(t) ∂TCR/∂r_i(t),    ΔW_ij = Σ_{b,t} φ'(x_i(t)) ε_i(t) p_ij(t),   and likewise W_in, b (m, n).

Minimising TCR alone has trivial minimisers. In practice (tests/test_learning_freeze_in.py) the input weights
shrink to ~0 and every trial sits at one fixed point: r_{t+1} = r_t, and the activity variance over trials and
time falls by 4-9 orders of magnitude. Three rules, one settings block, so the variants sit side by side in
one experiment grid:

    freeze_in           λ_k(t) = λ_k · s(t)                    (no control: collapses)
    freeze_in_noise     as freeze_in, plus after every optimizer step a random perturbation of the synaptic
                        weights, W += σ ξ / sqrt(N) and W_in += σ ξ / sqrt(n_in) (ξ ~ N(0, 1) entrywise; the
                        same relative size as the initial weights). Rank-one: m += σ ξ, n += σ ξ, which gives
                        ‖δW‖ ~ σ, the leaky perturbation's operator-norm scale. W_in is perturbed too because
                        silencing the inputs is the collapse route: noise on W alone does not stop it.
    freeze_in_control   λ_k(t) = λ_k · s(t) · c_k(t), a controller factor c_k ∈ [floor_k, 1],
                        floor_k = clamp(lambda_min / λ_k, MIN_FACTOR = 1e-8, 1)

Schedule s(t): "constant" (s = 1) or "ramp" (s = min(1, t / ramp_iterations):
λ(0) = 0, λ(ramp_iterations) = λ).

Controller (after every step, per member, from that step's activity variance v_k = Var(r) over trials and
time, averaged over units):

    v̄_k ← var_ema · v̄_k + (1 − var_ema) · v_k                 (v̄_k = v_k at the first step)
    v̄_k < low_frac · target_var  →  c_k ← max(down · c_k, floor_k)   (activity collapsing: back off)
    v̄_k ≥ target_var             →  c_k ← min(up · c_k, 1)           (recovered: back towards λ_k)
    otherwise                      c_k unchanged                    (hysteresis band)

TCR alone never raises the variance again, so without another drive the controller ends at c_k = floor_k:
learning stalls with the activity near low_frac · target_var instead of collapsing. With SGD the step scales
with λ. With Adam (which divides by a running RMS of past gradients) backing off still shrinks the steps as
long as down² < Adam's β2 (the gradient shrinks faster than the RMS forgets), and at c = 1e-8 the gradients
are at Adam's eps level.

Settings that a rule does not use (weight_noise_std for freeze_in/freeze_in_control, the controller's for
freeze_in/freeze_in_noise) are accepted and ignored, so one block serves all three. The rule's state
(controller factor and variance average, the noise generators) is in state_dict() for exact resume.
The noise is drawn on the CPU from one torch.Generator per member (seeded from a hash of the member seed and
"freeze_in_noise"), so it does not depend on the device or on the other members.
"""

from __future__ import annotations

import math

import torch

from rnngeom.learning import Batch, LearningRule, StepResult, register
from rnngeom.learning.rflo import local_gradients, member_seed, model_hparams

SCHEDULES = ("constant", "ramp")
# Lowest controller factor c_k: λ·1e-8 leaves the gradients at Adam's eps level (learning stalls), and
# up = 1.05 brings it back to 1 in ~380 steps once the activity recovers (a factor of exactly 0 could never
# recover).
MIN_FACTOR = 1e-8


@register
class FreezeIn(LearningRule):
    """Freeze-in without control: λ_k(t) = λ_k · s(t), updates from the local TCR error only."""

    name = "freeze_in"
    perturbs_weights = False  # freeze_in_noise
    controls_lambda = False  # freeze_in_control

    @classmethod
    def default_settings(cls) -> dict:
        return {
            "schedule": "constant",  # λ(t) schedule s(t): "constant" or "ramp"
            "ramp_iterations": 1000,  # "ramp": s(t) = min(1, t / ramp_iterations)
            "weight_noise_std": 0.05,  # σ of the per-step perturbation of W (m, n) and W_in (freeze_in_noise)
            "target_var": 0.02,  # controller: activity variance regarded as healthy (freeze_in_control)
            "low_frac": 0.5,  # controller: back off below low_frac · target_var
            "var_ema": 0.5,  # controller: smoothing of the measured activity variance
            "down": 0.5,  # controller: c ← down · c while collapsing
            "up": 1.05,  # controller: c ← up · c (at most 1) once recovered
            "lambda_min": 0.0,  # controller: λ_k · c_k never goes below this
        }

    def __init__(
        self, model_spec: dict, members: list[dict], settings: dict | None = None, tcr_window: str = "all"
    ):
        super().__init__(model_spec, members, settings, tcr_window)
        self.arch, self.n_hidden, _, self.alpha = model_hparams(self.model_spec, self.name)
        self._check_settings()
        K = self.n_members
        self.factor = torch.ones(K, dtype=torch.float64)  # controller factor c_k
        self.var_avg = torch.full((K,), math.nan, dtype=torch.float64)  # v̄_k (nan: no step seen yet)
        self.generators = []
        if self.perturbs_weights:
            # One generator per member, independent of the stream that drew the initial weights.
            self.generators = [
                torch.Generator().manual_seed(member_seed(int(m["seed"]), "freeze_in_noise"))
                for m in self.members
            ]

    def _check_settings(self) -> None:
        s = self.settings
        checks = {
            "schedule": s["schedule"] in SCHEDULES,
            "ramp_iterations": isinstance(s["ramp_iterations"], int) and s["ramp_iterations"] >= 1,
            "weight_noise_std": s["weight_noise_std"] >= 0,
            "target_var": s["target_var"] > 0,
            "low_frac": 0 < s["low_frac"] <= 1,
            "var_ema": 0 <= s["var_ema"] < 1,
            "down": 0 < s["down"] <= 1,
            "up": s["up"] >= 1,
            "lambda_min": s["lambda_min"] >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"learning rule {self.name!r}: invalid setting(s) {[(k, s[k]) for k in bad]} "
                f"(schedule in {list(SCHEDULES)}, ramp_iterations >= 1, weight_noise_std >= 0, "
                f"target_var > 0, 0 < low_frac <= 1, 0 <= var_ema < 1, 0 < down <= 1, up >= 1, "
                f"lambda_min >= 0)"
            )

    def schedule(self, iteration: int) -> float:
        """s(t): 1 ("constant") or min(1, t / ramp_iterations) ("ramp")."""
        if self.settings["schedule"] == "ramp":
            return min(1.0, iteration / self.settings["ramp_iterations"])
        return 1.0

    def lambdas(self, iteration: int) -> torch.Tensor:
        """[K] λ_k(t) = λ_k · s(t) · c_k (c_k = 1 without the controller)."""
        lam = self._lambdas.to(torch.float64) * self.schedule(iteration) * self.factor
        return lam.to(self._lambdas.dtype)

    def gradients_for(self, params: dict, batch: Batch, lambdas: torch.Tensor, iteration: int) -> StepResult:
        return local_gradients(params, batch, lambdas, arch=self.arch, alpha=self.alpha, feedback=None)

    def after_step(self, params: dict, iteration: int, result: StepResult) -> None:
        if self.controls_lambda:
            self._update_controller(result.activity_var)
        if self.perturbs_weights:
            self._perturb(params)

    def _update_controller(self, activity_var: torch.Tensor) -> None:
        s = self.settings
        v = activity_var.detach().to("cpu", torch.float64)
        first = torch.isnan(self.var_avg)
        self.var_avg = torch.where(first, v, s["var_ema"] * self.var_avg + (1 - s["var_ema"]) * v)
        base = self._lambdas.to(torch.float64)
        # Floor on c_k: lambda_min / λ_k, and never below MIN_FACTOR,
        # so that a recovery can still bring it back.
        floor = (s["lambda_min"] / base.clamp_min(1e-300)).clamp(min=MIN_FACTOR, max=1.0)
        collapsing = self.var_avg < s["low_frac"] * s["target_var"]
        recovered = self.var_avg >= s["target_var"]
        self.factor = torch.where(collapsing, torch.maximum(self.factor * s["down"], floor), self.factor)
        self.factor = torch.where(recovered, (self.factor * s["up"]).clamp(max=1.0), self.factor)

    def _perturb(self, params: dict) -> None:
        sigma = float(self.settings["weight_noise_std"])
        if sigma == 0:
            return
        scales = {"m": sigma, "n": sigma} if self.arch == "rank1" else {"W": sigma / self.n_hidden**0.5}
        scales["W_in"] = sigma / params["W_in"].shape[-1] ** 0.5
        with torch.no_grad():
            for name, scale in scales.items():
                p = params[name]
                # Drawn on the CPU per member (each member owns its stream); the update itself is one op.
                noise = torch.stack(
                    [torch.randn(p.shape[1:], generator=g, dtype=p.dtype) for g in self.generators]
                )
                p.add_(noise.to(p.device), alpha=scale)

    def state_dict(self) -> dict:
        return {
            "factor": self.factor.clone(),
            "var_avg": self.var_avg.clone(),
            "noise_rng": [g.get_state() for g in self.generators],
        }

    def load_state_dict(self, state: dict) -> None:
        K = self.n_members
        if len(state["factor"]) != K or len(state["noise_rng"]) != len(self.generators):
            raise ValueError(
                f"rule state for {len(state['factor'])} members / {len(state['noise_rng'])} "
                f"generators does not fit {self.name!r} with {K} members"
            )
        self.factor = state["factor"].clone().to(torch.float64)
        self.var_avg = state["var_avg"].clone().to(torch.float64)
        for g, rng_state in zip(self.generators, state["noise_rng"]):
            g.set_state(rng_state)


@register
class FreezeInNoise(FreezeIn):
    """Freeze-in plus a random perturbation of W (m, n) and W_in after every step (weight_noise_std)."""

    name = "freeze_in_noise"
    perturbs_weights = True


@register
class FreezeInControl(FreezeIn):
    """Freeze-in with the activity-variance controller on λ (target_var, low_frac, var_ema, down, up,
    lambda_min)."""

    name = "freeze_in_control"
    controls_lambda = True
