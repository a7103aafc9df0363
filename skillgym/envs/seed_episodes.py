"""SeedEpisodes: every episode starts from a seed of its own, drawn from the episode's number."""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class SeedEpisodes(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Reset episode ``n`` with the seed ``seed * SEEDS_PER_RUN + n``, whatever seed ``reset`` gets.

    A training run that is stopped between episodes and resumed must see the same episodes as
    one that ran through. An env's generator, advanced by every step, is hard to save from
    outside; seeding every episode makes its start, and its noise, a function of ``episode``
    alone, which a checkpoint can store. Seeds passed to ``reset`` are ignored, because training
    libraries seed the first reset of every ``learn`` call, which would restart the sequence on
    resume. Runs with seeds below 1000 never share an episode seed if they run fewer than
    ``SEEDS_PER_RUN`` episodes.

    Example:
        >>> env = SeedEpisodes(gym.make("Pendulum-v1"), seed=3)
        >>> first, _ = env.reset()
        >>> second, _ = env.reset(seed=123)   # ignored: this is episode 1
        >>> env.episode = 0                   # a resumed run restarts at the episode it stopped at
        >>> again, _ = env.reset()
        >>> bool((first == again).all()), bool((first == second).all())
        (True, False)
        >>> env.unwrapped.np_random_seed                # episode 0 of seed 3
        3000000
    """

    SEEDS_PER_RUN = 1_000_000
    MAX_SEED = 999

    def __init__(self, env: gym.Env, seed: int):
        gym.utils.RecordConstructorArgs.__init__(self, seed=seed)
        gym.Wrapper.__init__(self, env)
        if not 0 <= seed <= self.MAX_SEED:
            raise ValueError(f"seed must be in [0, {self.MAX_SEED}], got {seed}")
        self.seed = seed
        self.episode = 0  # the number of the next episode

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        episode_seed = self.seed * self.SEEDS_PER_RUN + self.episode
        self.episode += 1
        return self.env.reset(seed=episode_seed, options=options)
