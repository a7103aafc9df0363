"""Stage 3: skill-space RL (EXTRACT §4.3) as a Stable-Baselines3 algorithm."""

from skillgym.rl.buffers import SkillReplayBuffer, SkillReplayBufferSamples
from skillgym.rl.callbacks import StopAtLowLevelSteps
from skillgym.rl.distributions import SkillDistribution, categorical_kl, diag_gaussian_kl
from skillgym.rl.policies import (
    FrameStackCNN,
    MlpStateEncoder,
    SkillActions,
    SkillActor,
    SkillCritic,
    SkillPolicy,
)
from skillgym.rl.skill_sac import SkillSAC

__all__ = [
    "FrameStackCNN",
    "MlpStateEncoder",
    "SkillActions",
    "SkillActor",
    "SkillCritic",
    "SkillDistribution",
    "SkillPolicy",
    "SkillReplayBuffer",
    "SkillReplayBufferSamples",
    "SkillSAC",
    "StopAtLowLevelSteps",
    "categorical_kl",
    "diag_gaussian_kl",
]
