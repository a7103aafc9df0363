"""RepeatableReset: the last reset of an env, saved as JSON, repeated exactly by a fresh env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def _envs_within(env: gym.Env) -> dict[str, gym.Env]:
    """``env``, the envs it wraps and the envs they hold as attributes (a task env holding a simulator env,
    which holds a robot env), each once, keyed by its attribute path from ``env``."""
    found: dict[str, gym.Env] = {}
    todo: list[tuple[str, gym.Env]] = [("env", env)]
    while todo:
        path, current = todo.pop(0)
        if any(current is seen for seen in found.values()):
            continue
        found[path] = current
        todo += [(f"{path}.{name}", value) for name, value in vars(current).items() if isinstance(value, gym.Env)]
    return found


def generator_states(env: gym.Env) -> dict[str, dict[str, Any]]:
    """The state of every random generator (``np_random``) of the envs within ``env``, as JSON-able dicts
    keyed by the holding env's attribute path. Generators not made yet are left out."""
    return {path: inner._np_random.bit_generator.state for path, inner in _envs_within(env).items()
            if isinstance(vars(inner).get("_np_random"), np.random.Generator)}


def restore_generators(env: gym.Env, states: dict[str, dict[str, Any]]) -> None:
    """Put the generators of the envs within ``env`` back into ``states`` (from :func:`generator_states` of an
    env built the same way). A generator is restored in place, so envs that share one keep sharing it."""
    envs = _envs_within(env)
    missing = sorted(set(states) - set(envs))
    if missing:
        raise ValueError(f"the env holds no {', '.join(missing)}: it is not built like the one whose random "
                         "state was saved")
    for path, state in states.items():
        generator = vars(envs[path]).get("_np_random")
        if not isinstance(generator, np.random.Generator):
            generator = np.random.Generator(getattr(np.random, state["bit_generator"])())
            envs[path].np_random = generator
        generator.bit_generator.state = state


class RepeatableReset(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Remembers what its last reset started from, so that another process can repeat that reset.

    Stable-Baselines3 resets an env inside the step that ends an episode, so a training run saved
    between episodes has already drawn the next episode's start. That start is a function of the
    seed given to ``reset`` and of the state of every random generator of the env: its own and
    those of the envs it holds. ``last_reset`` holds both, as JSON; ``repeat(last_reset)`` makes
    the next reset of a freshly built env start from them, whatever seed it is given. Episodes are
    those of the plain env, so wrapping an env changes no result. Randomness outside the envs'
    generators (numpy's global generator, torch's) is the caller's to save.

    Example:
        >>> env = RepeatableReset(gym.make("Pendulum-v1"))
        >>> _ = env.reset(seed=0)
        >>> start, _ = env.reset()             # the second episode: drawn from the generator, not a seed
        >>> saved = env.last_reset
        >>> fresh = RepeatableReset(gym.make("Pendulum-v1"))
        >>> fresh.repeat(saved)
        >>> again, _ = fresh.reset(seed=123)   # the seed a training library passes is overridden
        >>> bool((start == again).all())
        True
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self.last_reset: dict[str, Any] | None = None
        self._to_repeat: dict[str, Any] | None = None

    def repeat(self, reset: dict[str, Any]) -> None:
        """Make the next reset repeat ``reset``, a ``last_reset`` of an env built the same way."""
        self._to_repeat = reset

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if self._to_repeat is not None:
            restore_generators(self.env, self._to_repeat["generators"])
            seed, self._to_repeat = self._to_repeat["seed"], None
        self.last_reset = {"seed": seed, "generators": generator_states(self.env)}
        return self.env.reset(seed=seed, options=options)
