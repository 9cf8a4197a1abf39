"""``SACConfig``: every hyperparameter of the learner, the SAC family's building blocks included.

CrossQ, TQC, DroQ and REDQ are configurations of these fields (``conf/agent/*.yaml``), not
classes: a critic architecture by name and its normalization (none, LayerNorm, Batch Renorm),
dropout, a target network or none, the ensemble size and the subset the target takes its min
over, a scalar or quantile head, the target rule, how the actor reduces the critics, and the
hooks after each optimizer step (the names are those of ``parts.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from rl_repara.nn.norms import NORMS

__all__ = ["SACConfig"]


@dataclass
class SACConfig:
    """Every SAC hyperparameter. Defaults follow the SAC paper and the RL Zoo."""

    gamma: float = 0.99  # discount γ
    tau: float = 0.005  # Polyak rate: θ' ← (1 − τ)θ' + τθ
    lr: float = 3e-4  # Adam learning rate of actor, critics and α
    # the lr over the run: constant | linear | cosine, from lr to lr_end over lr_decay_updates
    # updates (0: the run's updates, set by train())
    lr_schedule: str = "constant"
    lr_end: float = 3e-5
    lr_decay_updates: int = 0
    # what the schedule counts: updates (every optimizer at the update count) | own_steps (each
    # optimizer at its own step count: with a policy delay d the actor's and α's decay d× slower;
    # XQC, FlashSAC)
    lr_clock: str = "updates"
    adam_beta1: float = 0.9  # Adam's β1 of actor and critics (CrossQ: 0.5); log α's is always 0.9
    batch_size: int = 256
    buffer_size: int = 1_000_000
    learning_starts: int = 5_000  # env steps of uniform random actions before learning
    utd: int = 1  # gradient updates per env step (update-to-data ratio)
    n_step: int = 1  # n-step returns, computed when sampled; entropy bonus at the bootstrap step only
    num_critics: int = 2
    critic_arch: str = "mlp"  # parts.CRITIC_ARCHS: mlp | residual | batchnorm | hyperspherical
    critic_arch_kwargs: Dict[str, Any] = field(default_factory=dict)  # to an architecture other than mlp
    hidden_sizes: List[int] = field(default_factory=lambda: [256, 256])  # actor (and critics)
    actor_arch: str = "mlp"  # mlp | hyperspherical (nn/policies.py ACTOR_NETS)
    actor_arch_kwargs: Dict[str, Any] = field(default_factory=dict)  # to an architecture other than mlp
    critic_hidden_sizes: Optional[List[int]] = None  # None: hidden_sizes
    critic_norm: str = "none"  # none | layer | batchrenorm, after each hidden Linear
    critic_dropout: float = 0.0  # dropout after each hidden Linear of the critics (DroQ)
    actor_norm: str = "none"  # none | batchrenorm (CrossQ)
    brn_momentum: float = 0.01  # Batch Renorm: running-statistics rate
    brn_warmup_steps: int = 100_000  # Batch Renorm: train steps as plain batch norm first
    target_network: bool = True  # false: CrossQ's joint (s, a), (s', a') pass, no target
    # the critics (and a target network) run on the joint [(s, a); (s', a')] batch; None: without
    # a target network (CrossQ). XQC: with one.
    joint_pass: Optional[bool] = None
    # the actor step runs the policy on [s; s'] (its batch norm's statistics see both halves) and
    # its loss on s (FlashSAC)
    actor_joint_pass: bool = False
    critic_subset: Optional[int] = None  # REDQ: the target's min over this many random critics
    actor_q: str = "min"  # min | mean over the critics (and quantiles) in the actor loss
    num_quantiles: int = 1  # > 1: TQC's distributional critics with this many quantiles
    drop_quantiles: int = 0  # TQC: per critic, dropped from the top of the pooled target
    num_bins: int = 1  # > 1: a categorical critic head over this many bins (agent/categorical.py)
    v_min: float = -10.0  # the categorical support: linspace(v_min, v_max, num_bins)
    v_max: float = 10.0
    hl_gauss_sigma: float = 0.75  # target_rule=hl_gauss: the Gaussian's σ, in bins
    # parts.TARGET_RULES: min | truncated_quantiles | c51 | hl_gauss; auto: by the head
    target_rule: str = "auto"
    post_step_hooks: List[str] = field(default_factory=list)  # parts.POST_STEP_HOOKS, after each step
    policy_delay: int = 1  # actor and α step once every `policy_delay` critic steps
    # critics_first (SAC) | actor_first (SimbaV2: actor, α, then the critics with the new policy)
    update_order: str = "critics_first"
    target_update_every: int = 1  # Polyak update once every this many critic steps
    # divide sampled rewards by the scale of the discounted return (agent/reward_scaling.py):
    # none | return_std (XQC) | return_std_max (SimbaV2, FlashSAC: also >= max|G| / reward_g_max)
    reward_scaling: str = "none"
    reward_g_max: float = 5.0
    autotune_alpha: bool = True  # learn α to hold the entropy at `target_entropy`
    init_alpha: float = 1.0  # α at the start (fixed α when autotune_alpha is false)
    alpha_loss: str = "log_alpha"  # log_alpha: log α·(H − H_target) (SAC) | alpha: α·(H − H_target)
    target_entropy: Optional[float] = None  # nats, unit-box density; None: the rule below
    target_entropy_per_dim: float = -1.0  # the rule: this many nats per action dim (SAC: -1)
    # or the entropy per dim of N(0, σ²): 0.5·log(2πe·σ²) (FlashSAC: σ = 0.15); None: per_dim
    target_entropy_sigma: Optional[float] = None
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    noise_beta: float = 0.0  # exploration noise color while collecting: 0 white, 1 pink
    noise_repeat_max: int = 1  # hold each exploration ε for k ~ P(k) ∝ k^-2 on 1..this steps (FlashSAC: 16)
    normalize_obs: bool = False  # running mean/std of observations, inside the policy
    obs_clip: float = 10.0  # normalized observations are clipped to ±obs_clip
    precision: str = "fp32"  # "fp32" or "bf16" (autocast of the matmuls; math stays fp32)
    # torch.compile the update: true | false | auto (train() compiles where the run is long
    # enough to earn the compile time back, and says which it chose). Any: bool or "auto".
    compile: Any = "auto"
    cudagraphs: bool = False  # CUDA graphs for the update (GPU only; implies compile)

    def policy_kwargs(self) -> dict[str, Any]:
        """The ``TanhGaussianPolicy`` arguments this config sets (all but spaces and bounds)."""
        return {
            "hidden_sizes": self.hidden_sizes,
            "log_std_bounds": (self.log_std_min, self.log_std_max),
            "normalize_obs": self.normalize_obs,
            "obs_clip": self.obs_clip,
            "norm": self.actor_norm,
            "arch": self.actor_arch,
            "arch_kwargs": self.actor_arch_kwargs,
            **self._brn_kwargs(self.actor_norm),
        }

    def critic_kwargs(self) -> dict[str, Any]:
        """The ``QEnsemble`` arguments this config sets (all but the shapes)."""
        return {
            "num_critics": self.num_critics,
            "hidden_sizes": self.critic_hidden_sizes or self.hidden_sizes,
            "norm": self.critic_norm,
            "dropout": self.critic_dropout,
            "input_norm": self.critic_norm == "batchrenorm",
            "num_quantiles": self.num_quantiles,
            "num_bins": self.num_bins,
            "v_min": self.v_min,
            "v_max": self.v_max,
            **self._brn_kwargs(self.critic_norm),
        }

    def _brn_kwargs(self, norm: str) -> dict[str, Any]:
        if norm != "batchrenorm":
            return {}
        return {"momentum": self.brn_momentum, "warmup_steps": self.brn_warmup_steps}

    def compile_choice(self) -> Optional[bool]:
        """``compile`` as True, False, or None for ``auto`` (also from the strings a command
        line or a YAML file gives)."""
        value = str(self.compile).lower()
        return None if value == "auto" else value in ("true", "1", "yes", "on")

    def resolved_target_rule(self) -> str:
        """``target_rule``, with ``auto`` resolved by the head: ``truncated_quantiles`` for a
        quantile head (``num_quantiles > 1``), ``c51`` for a categorical one (``num_bins >
        1``), else ``min``."""
        if self.target_rule != "auto":
            return self.target_rule
        return {"quantiles": "truncated_quantiles", "categorical": "c51"}.get(self.head(), "min")

    def head(self) -> str:
        """The critics' head: ``scalar``, ``quantiles`` or ``categorical``."""
        if self.num_quantiles > 1:
            return "quantiles"
        return "categorical" if self.num_bins > 1 else "scalar"

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad value (or combination of values)."""
        for ok, msg in self._range_checks() + self._combination_checks() + self._name_checks():
            if not ok:
                raise ValueError(f"agent config: {msg}.")

    def _range_checks(self) -> list[tuple[bool, str]]:
        sizes_ok = all(len(s) >= 1 and all(h >= 1 for h in s) for s in self._all_sizes())
        return [
            (0.0 <= self.gamma <= 1.0, "gamma must be in [0, 1]"),
            (0.0 < self.tau <= 1.0, "tau must be in (0, 1]"),
            (self.lr > 0, "lr must be > 0"),
            (0.0 <= self.adam_beta1 < 1.0, "adam_beta1 must be in [0, 1)"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.buffer_size >= 1, "buffer_size must be >= 1"),
            (self.learning_starts >= 0, "learning_starts must be >= 0"),
            (self.utd >= 1, "utd must be >= 1"),
            (self.n_step >= 1, "n_step must be >= 1"),
            (self.num_critics >= 1, "num_critics must be >= 1"),
            (self.policy_delay >= 1, "policy_delay must be >= 1"),
            (self.target_update_every >= 1, "target_update_every must be >= 1"),
            (self.init_alpha > 0, "init_alpha must be > 0"),
            (self.log_std_min < self.log_std_max, "log_std_min must be < log_std_max"),
            (self.precision in ("fp32", "bf16"), "precision must be 'fp32' or 'bf16'"),
            (self.obs_clip > 0, "obs_clip must be > 0"),
            (self.noise_beta >= 0, "noise_beta must be >= 0 (0 white, 1 pink, 2 red)"),
            (self.noise_repeat_max >= 1, "noise_repeat_max must be >= 1 (1: a new ε every step)"),
            (self.critic_norm in NORMS, f"critic_norm must be one of {', '.join(NORMS)}"),
            (self.actor_norm in ("none", "batchrenorm"), "actor_norm must be none or batchrenorm"),
            (0.0 <= self.critic_dropout < 1.0, "critic_dropout must be in [0, 1)"),
            (self.actor_q in ("min", "mean"), "actor_q must be min or mean"),
            (self.num_quantiles >= 1, "num_quantiles must be >= 1"),
            (0.0 < self.brn_momentum <= 1.0, "brn_momentum must be in (0, 1]"),
            (self.brn_warmup_steps >= 0, "brn_warmup_steps must be >= 0"),
            (sizes_ok, "hidden_sizes and critic_hidden_sizes must be non-empty lists of positive ints"),
        ]

    def _name_checks(self) -> list[tuple[bool, str]]:
        from rl_repara.agent import parts  # the registries import the parts, which import torch
        from rl_repara.nn.policies import ACTOR_NETS

        def known(name: str, registry: dict, key: str) -> tuple[bool, str]:
            return name in registry, f"{key}={name!r} is not one of {', '.join(sorted(registry))}"

        rule = self.resolved_target_rule()
        needs = {"truncated_quantiles": "quantiles", "c51": "categorical", "hl_gauss": "categorical"}.get(
            rule, "scalar"
        )
        return [
            known(self.critic_arch, parts.CRITIC_ARCHS, "critic_arch"),
            known(self.actor_arch, {"mlp": None, **ACTOR_NETS}, "actor_arch"),
            known(rule, parts.TARGET_RULES, "target_rule"),
            *(known(h, parts.POST_STEP_HOOKS, "post_step_hooks") for h in self.post_step_hooks),
            (
                str(self.compile).lower() in ("auto", "true", "false", "1", "0", "yes", "no", "on", "off"),
                f"compile must be true, false or auto; got {self.compile!r}",
            ),
            (
                needs == self.head(),
                f"target_rule={rule} needs a {needs} head (scalar: num_quantiles=1 and num_bins=1; "
                f"quantiles: num_quantiles > 1; categorical: num_bins > 1); this config has a "
                f"{self.head()} one",
            ),
            (
                self.num_quantiles == 1 or self.num_bins == 1,
                "num_quantiles and num_bins cannot both be > 1 (quantile or categorical head)",
            ),
            (self.num_bins == 1 or self.v_min < self.v_max, "v_min must be < v_max"),
            (self.hl_gauss_sigma > 0, "hl_gauss_sigma must be > 0"),
            (
                self.reward_scaling in ("none", "return_std", "return_std_max"),
                "reward_scaling must be none, return_std or return_std_max",
            ),
            (self.reward_g_max > 0, "reward_g_max must be > 0"),
            (
                self.lr_schedule in ("constant", "linear", "cosine"),
                "lr_schedule must be constant, linear or cosine",
            ),
            (self.lr_clock in ("updates", "own_steps"), "lr_clock must be updates or own_steps"),
            (
                self.update_order in ("critics_first", "actor_first"),
                "update_order must be critics_first or actor_first",
            ),
            (self.alpha_loss in ("log_alpha", "alpha"), "alpha_loss must be log_alpha or alpha"),
            (self.lr_end > 0 and self.lr_decay_updates >= 0, "lr_end must be > 0 and lr_decay_updates >= 0"),
            (
                self.target_entropy_sigma is None or self.target_entropy_sigma > 0,
                "target_entropy_sigma must be > 0 (or null)",
            ),
            (
                self.critic_arch == "mlp" or (self.critic_norm == "none" and self.critic_dropout == 0),
                f"critic_norm and critic_dropout belong to critic_arch=mlp; critic_arch={self.critic_arch} "
                "takes its settings in critic_arch_kwargs",
            ),
            (
                self.critic_arch != "mlp" or not self.critic_arch_kwargs,
                f"critic_arch_kwargs {dict(self.critic_arch_kwargs)} belong to a critic_arch other than "
                "mlp; the mlp critics take critic_hidden_sizes",
            ),
            (
                self.actor_arch != "mlp" or not self.actor_arch_kwargs,
                f"actor_arch_kwargs {dict(self.actor_arch_kwargs)} belong to an actor_arch other than "
                "mlp; the mlp actor takes hidden_sizes",
            ),
        ]

    def _combination_checks(self) -> list[tuple[bool, str]]:
        subset = self.critic_subset
        brn = "batchrenorm" in (self.critic_norm, self.actor_norm)
        return [
            (
                self.drop_quantiles == 0 or self.num_quantiles > 1,
                f"drop_quantiles={self.drop_quantiles} needs a quantile head: set num_quantiles > 1 "
                "(TQC: num_quantiles=25, drop_quantiles=2), or drop_quantiles=0",
            ),
            (
                0 <= self.drop_quantiles < self.num_quantiles,
                f"drop_quantiles ({self.drop_quantiles}) must be in [0, num_quantiles={self.num_quantiles})",
            ),
            (
                subset is None or 1 <= subset <= self.num_critics,
                f"critic_subset ({subset}) must be between 1 and num_critics ({self.num_critics})",
            ),
            (
                not brn or self.batch_size >= 2,
                f"Batch Renorm (critic_norm or actor_norm=batchrenorm) needs batch_size >= 2; got "
                f"batch_size={self.batch_size}",
            ),
            (
                self.target_network or self.critic_norm == "batchrenorm",
                "target_network=false (CrossQ) needs critic_norm=batchrenorm: without it the "
                "critics bootstrap from themselves and diverge",
            ),
        ]

    def _all_sizes(self) -> list[List[int]]:
        return [self.hidden_sizes] + ([self.critic_hidden_sizes] if self.critic_hidden_sizes else [])
