"""Learning rules: how one training iteration turns a minibatch into parameter (pseudo-)gradients.

``rnngeom.train`` is one loop for every architecture and learning rule. It trains an *ensemble* of K >= 1
runs of one condition together (same task, architecture, hyperparameters and rule; members differ in seed,
lambda_tcr and gain, which only changes the initial weights). Parameters are held stacked: a dict
``name -> tensor [K, *shape]`` keyed by the model's ``named_parameters()`` names (e.g. the leaky RNN:
``W, W_in, b, readout.weight, readout.bias``). A rule computes each member's gradient of its own loss
(members never interact); the optimizer (Adam or SGD, elementwise) then applies it. Member k's result thus
depends on which other members share the ensemble only through the rounding of the batched products.

A rule is a class registered in ``RULES`` with

    __init__(model_spec, members, settings, tcr_window)
                                              model_spec: build_model spec without "gain";
                                              members: [{"seed", "lambda_tcr", "gain"}, ...] (K entries);
                                              settings: the rule's block of the training settings,
                                              training[<rule name>], merged over default_settings();
                                              tcr_window: "all" or "delay" (training.tcr_window; the
                                              batches then carry the delay's time pairs, Batch.tcr_pairs)
    lambdas(iteration) -> [K]                 lambda_tcr(t) of every member (constant unless scheduled)
    gradients_for(params, batch, lambdas, iteration) -> StepResult
                                              the (pseudo-)gradients at the given λ_k(t); the trainer calls
                                              gradients(params, batch, iteration), which uses the rule's own
                                              λ_k(t) and records it in StepResult.lambda_tcr
    after_step(params, iteration, result)     optional in-place changes after the optimizer step
                                              (e.g. random weight perturbations); default: nothing
    state_dict() / load_state_dict(d)         rule state for exact resume (default: none)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Batch:
    inputs: torch.Tensor  # [K, B, T, n_in]   member k's own minibatch
    targets: torch.Tensor  # [K, B, T, n_out]
    mask: torch.Tensor  # [K, B, T, n_out]  1 where the task loss counts
    tcr_pairs: torch.Tensor | None = None  # [K, B, T-1] 1 for the time pairs TCR counts (None: every pair)

    def pair_weight(self, layout: str) -> torch.Tensor | None:
        """``tcr_pairs`` shaped for rnngeom.tcr's pair_weight: "member_first" [K, B, T-1, 1] (activity
        [K, B, T, N]) or "time_first" [T-1, K, B, 1] (activity [T, K, B, N]); None when every pair counts."""
        if self.tcr_pairs is None:
            return None
        w = self.tcr_pairs if layout == "member_first" else self.tcr_pairs.permute(2, 0, 1)
        return w[..., None]


@dataclass
class StepResult:
    task_loss: torch.Tensor  # [K] masked MSE of each member (rnngeom.losses.masked_mse, detached)
    tcr: torch.Tensor  # [K] TCR penalty of each member (rnngeom.tcr.tcr_penalty, detached)
    grads: dict[str, torch.Tensor]  # name -> [K, *shape], same keys as params
    activity_var: torch.Tensor | None = None  # [K] variance of r over batch and time, mean over units
    lambda_tcr: torch.Tensor | None = None  # [K] λ_k(t) of this step (set by LearningRule.gradients)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # [K] per-member values to record in metrics


TCR_WINDOWS = ("all", "delay")  # the time pairs TCR counts (rnngeom.tcr)


class LearningRule:
    """Base class: constant lambda_tcr, no rule state, nothing after the step."""

    name = "base"
    settings_key = "base"  # the training.<key> block holding this rule's settings

    @classmethod
    def default_settings(cls) -> dict:
        return {}

    def __init__(
        self, model_spec: dict, members: list[dict], settings: dict | None = None, tcr_window: str = "all"
    ):
        if tcr_window not in TCR_WINDOWS:
            raise ValueError(f"training.tcr_window {tcr_window!r}; allowed: {list(TCR_WINDOWS)}")
        self.tcr_window = tcr_window
        self.model_spec = dict(model_spec)
        self.members = [dict(m) for m in members]
        unknown = sorted(set(settings or {}) - set(self.default_settings()))
        if unknown:
            raise ValueError(
                f"unknown setting(s) {unknown} for learning rule {self.name!r}; "
                f"allowed: {sorted(self.default_settings())}"
            )
        self.settings = {**self.default_settings(), **(settings or {})}
        self._lambdas = torch.tensor([float(m["lambda_tcr"]) for m in self.members])

    @property
    def n_members(self) -> int:
        return len(self.members)

    def lambdas(self, iteration: int) -> torch.Tensor:
        return self._lambdas

    def gradients(self, params: dict, batch: Batch, iteration: int) -> StepResult:
        """Every member's (pseudo-)gradients at iteration ``iteration``, at the rule's own λ_k(t)."""
        lambdas = self.lambdas(iteration)
        result = self.gradients_for(params, batch, lambdas, iteration)
        result.lambda_tcr = lambdas
        return result

    def gradients_for(self, params: dict, batch: Batch, lambdas: torch.Tensor, iteration: int) -> StepResult:
        """The (pseudo-)gradients at the given λ_k [K] (what each rule implements)."""
        raise NotImplementedError

    def after_step(self, params: dict, iteration: int, result: StepResult) -> None:
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None

    def provenance(self) -> dict:
        """What a run's provenance.json should record of how this rule computed (e.g. which code path)."""
        return {}


def activity_variance(r: torch.Tensor) -> torch.Tensor:
    """[K] variance of each unit's activity over batch and time, averaged over units; r [K, B, T, N] (or
    time-major [K, T, B, N]: the same samples). Two-pass in float64: cheap here and exact enough for a
    collapse toward a fixed point (variance -> 0)."""
    K, N = r.shape[0], r.shape[-1]
    flat = r.reshape(K, -1, N).double()
    centred = flat - flat.mean(dim=1, keepdim=True)
    return (centred * centred).mean(dim=(1, 2))


RULES: dict[str, type[LearningRule]] = {}


def register(cls: type[LearningRule]) -> type[LearningRule]:
    """Class decorator: make a rule available by name. Its settings block is training.<settings_key>, which
    defaults to its name and is inherited (the freeze_in variants share training.freeze_in)."""
    if cls.settings_key == LearningRule.settings_key:  # not set by the class or a registered ancestor
        cls.settings_key = cls.name
    RULES[cls.name] = cls
    return cls


def get_rule(name: str) -> type[LearningRule]:
    _load_rules()
    if name not in RULES:
        raise ValueError(f"unknown learning_rule {name!r}; allowed: {sorted(RULES)}")
    return RULES[name]


def _load_rules() -> None:
    # Importing the modules registers their rules (kept lazy so this module has no import cycle).
    import importlib

    for module in ("bptt", "rflo", "freeze_in"):
        try:
            importlib.import_module(f"rnngeom.learning.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"rnngeom.learning.{module}":
                raise
