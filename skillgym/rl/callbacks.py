"""Callbacks for skill-space agents."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback, ProgressBarCallback


class StopAtLowLevelSteps(BaseCallback):
    """Stop ``learn`` once the agent has run ``steps`` low-level env steps.

    ``learn(total_timesteps=...)`` counts skill decisions, and a skill runs a varying number of
    low-level steps; budgets comparable with low-level agents count those steps instead. The model
    must count them in ``num_low_level_steps``, as :class:`~skillgym.rl.SkillSAC` does, over all envs
    of a vector env. SB3 calls the callback after each (vector) env step, before the transitions are
    stored and counted: the count ends at most one skill per env past the budget, and the skills run
    when training stops are not stored. On an :class:`~skillgym.rl.AsyncSkillVecEnv` it is called after
    each ended skill, and the one whose end stops training is counted (not stored): the count ends at
    most two skills past the budget.

    Example:
        >>> from skillgym.envs.toy import ToySkillEnv
        >>> from skillgym.rl import SkillSAC
        >>> model = SkillSAC("SkillPolicy", ToySkillEnv(), learning_starts=10, batch_size=8, seed=0)
        >>> model = model.learn(total_timesteps=10**9, callback=StopAtLowLevelSteps(60))
        >>> 60 <= model.num_low_level_steps < 60 + 4   # 4: the toy env's longest skill
        True

    With the bundled kitchen library, the usual budget is
    ``SkillSAC(...).learn(total_timesteps=10**9, callback=StopAtLowLevelSteps(300_000))``.
    """

    def __init__(self, steps: int, verbose: int = 0):
        super().__init__(verbose)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps = int(steps)

    def _init_callback(self) -> None:
        if not hasattr(self.model, "num_low_level_steps"):
            raise TypeError(
                f"StopAtLowLevelSteps needs a model that counts num_low_level_steps (SkillSAC), "
                f"got {type(self.model).__name__}"
            )

    def _on_step(self) -> bool:
        done = self.model.num_low_level_steps >= self.steps
        if done and self.verbose >= 1:
            print(f"Stopping at {self.model.num_low_level_steps} low-level steps (budget {self.steps})")
        return not done


class DecisionProgressBar(ProgressBarCallback):
    """SB3's progress bar of ``learn``, advanced by the skill decisions the model has counted.

    SB3's own bar adds ``num_envs`` per callback step, which is right for its vector envs but counts N per
    ended skill on an :class:`~skillgym.rl.AsyncSkillVecEnv`. ``SkillSAC.learn(progress_bar=True)`` uses this one.
    """

    def _on_training_start(self) -> None:
        super()._on_training_start()
        self.first = self.model.num_timesteps

    def _on_step(self) -> bool:
        self.pbar.update(self.model.num_timesteps - self.first - self.pbar.n)
        return True
