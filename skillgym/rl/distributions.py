"""Closed-form divergences and the factorised skill distribution π(d, z | s) = π_d(d | s) π_z(z | s, d).

All KLs are *true* KLs: summed over the categorical support and over the dimensions of z, never
averaged (averaging would silently divide α_d by K and α_z by nz).
"""

from __future__ import annotations

from typing import NamedTuple

import torch as th
import torch.nn.functional as F

# Same bounds as SB3's SAC actor: they keep exp(log_std) finite and strictly positive. Applied to the
# policy *and* the prior so that π == p holds exactly at initialisation (KL = 0).
LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0


def categorical_kl(logits_p: th.Tensor, logits_q: th.Tensor) -> th.Tensor:
    """KL(p ‖ q) between categoricals given by logits, summed over the last dim.

    :param logits_p: (..., K) logits of p (need not be normalised)
    :param logits_q: (..., K) logits of q
    :return: (...) KL in nats
    """
    log_p = F.log_softmax(logits_p, dim=-1)
    log_q = F.log_softmax(logits_q, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def diag_gaussian_kl(
    mean_p: th.Tensor, log_std_p: th.Tensor, mean_q: th.Tensor, log_std_q: th.Tensor
) -> th.Tensor:
    """KL(N(μ_p, σ_p²) ‖ N(μ_q, σ_q²)) for diagonal Gaussians, summed over the last dim.

    :return: (...) KL in nats
    """
    var_ratio = th.exp(2.0 * (log_std_p - log_std_q))
    mahalanobis = ((mean_p - mean_q) * th.exp(-log_std_q)) ** 2
    return (log_std_q - log_std_p + 0.5 * (var_ratio + mahalanobis) - 0.5).sum(dim=-1)


class SkillDistribution(NamedTuple):
    """Parameters of π(d, z | s) for a batch of states.

    ``logits`` (B, K) of π_d; ``mean`` and ``log_std`` (B, K, nz) of π_z(· | s, d) for *every* d, so that the
    losses can be evaluated for all skills in one batched pass.
    """

    logits: th.Tensor
    mean: th.Tensor
    log_std: th.Tensor

    @classmethod
    def from_module_output(cls, out: tuple[th.Tensor, th.Tensor, th.Tensor]) -> SkillDistribution:
        """Validate a prior-interface output ``(logits (B,K), z_mean (B,K,nz), z_log_std (B,K,nz))``."""
        logits, mean, log_std = out
        if (
            logits.dim() != 2
            or mean.dim() != 3
            or mean.shape != log_std.shape
            or mean.shape[:2] != logits.shape
        ):
            raise ValueError(
                "A skill prior must return (logits (B,K), z_mean (B,K,nz), z_log_std (B,K,nz)); got shapes "
                f"{tuple(logits.shape)}, {tuple(mean.shape)}, {tuple(log_std.shape)}"
            )
        return cls(logits, mean, th.clamp(log_std, LOG_STD_MIN, LOG_STD_MAX))

    @property
    def probs(self) -> th.Tensor:
        """π_d(d | s) for every skill: ``(B, K)``."""
        return F.softmax(self.logits, dim=-1)

    def rsample_args(self) -> th.Tensor:
        """z_d ~ π_z(· | s, d) for every d, reparameterised: (B, K, nz)."""
        return self.mean + th.exp(self.log_std) * th.randn_like(self.mean)

    def sample(self, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor]:
        """One (d, z) per state: (B,) long and (B, nz). Deterministic = most likely skill and its mean argument."""
        if deterministic:
            skill = self.logits.argmax(dim=-1)
        else:
            skill = th.distributions.Categorical(logits=self.logits).sample()
        idx = skill.view(-1, 1, 1).expand(-1, 1, self.mean.shape[-1])
        mean = self.mean.gather(1, idx).squeeze(1)
        if deterministic:
            return skill, mean
        std = th.exp(self.log_std.gather(1, idx).squeeze(1))
        return skill, mean + std * th.randn_like(mean)

    def kl_d(self, prior: SkillDistribution) -> th.Tensor:
        """KL(π_d(· | s) ‖ p_d(· | s)): (B,)."""
        return categorical_kl(self.logits, prior.logits)

    def kl_z(self, prior: SkillDistribution) -> th.Tensor:
        """KL(π_z(· | s, d) ‖ p_z(· | s, d)) for every d: (B, K)."""
        return diag_gaussian_kl(self.mean, self.log_std, prior.mean, prior.log_std)
