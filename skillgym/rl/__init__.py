"""Stage 3: skill-space RL (EXTRACT §4.3) as a Stable-Baselines3 algorithm."""

from skillgym.rl.buffers import (
    SkillDictReplayBuffer,
    SkillFeatureReplayBuffer,
    SkillReplayBuffer,
    SkillReplayBufferSamples,
)
from skillgym.rl.callbacks import DecisionProgressBar, StopAtLowLevelSteps
from skillgym.rl.distributions import SkillDistribution, categorical_kl, diag_gaussian_kl
from skillgym.rl.policies import (
    FrameStackCNN,
    MlpStateEncoder,
    ObservationAndInstruction,
    SkillActions,
    SkillActor,
    SkillCritic,
    SkillPolicy,
)
from skillgym.rl.skill_sac import SkillSAC
from skillgym.rl.train import TrainRLArgs, train_rl
from skillgym.rl.vec_env import AsyncSkillVecEnv

__all__ = [
    "AsyncSkillVecEnv",
    "DecisionProgressBar",
    "FrameStackCNN",
    "MlpStateEncoder",
    "ObservationAndInstruction",
    "SkillActions",
    "SkillActor",
    "SkillCritic",
    "SkillDictReplayBuffer",
    "SkillDistribution",
    "SkillFeatureReplayBuffer",
    "SkillPolicy",
    "SkillReplayBuffer",
    "SkillReplayBufferSamples",
    "SkillSAC",
    "StopAtLowLevelSteps",
    "TrainRLArgs",
    "categorical_kl",
    "diag_gaussian_kl",
    "train_rl",
]
