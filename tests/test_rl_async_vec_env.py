"""AsyncSkillVecEnv: envs in subprocesses hand out their ended skills one at a time, in the order of low-level time
whatever the speed of each process, and SkillSAC learning from them repeats its run exactly."""

from __future__ import annotations

import multiprocessing as mp
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback, StopTrainingOnMaxEpisodes
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

import skillgym  # noqa: F401
from skillgym.envs.toy import ToySkillEnv
from skillgym.rl import DecisionProgressBar, SkillSAC, StopAtLowLevelSteps
from skillgym.rl.vec_env import AsyncSkillVecEnv
from tests.test_rl_vec_envs import SkillLog


class Late(gym.Wrapper):
    """Sleeps a random time before every skill, drawn from the OS (no seed): this env's process runs late,
    by a different amount on every run."""

    def __init__(self, env: gym.Env, most: float, least: float = 0.0):
        super().__init__(env)
        self.least, self.most = least, most

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        time.sleep(random.SystemRandom().uniform(self.least, self.most))
        return self.env.step(action)


def toy(max_decisions: int, late: float = 0.0, least: float = 0.0) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        env = SkillLog(ToySkillEnv(max_decisions=max_decisions), reward_at_end=True)
        return Late(env, late, least) if late else env

    return make


def kitchen(late: float = 0.0) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        env = SkillLog(gym.make("skillgym:SkillKitchen-v0"))
        return Late(env, late) if late else env

    return make


def skill(skill_id: int, arg_dim: int) -> dict[str, Any]:
    return {"skill": skill_id, "arg": np.zeros(arg_dim, np.float32)}


def ends(venv: AsyncSkillVecEnv, plans: list[list[int]]) -> list[tuple[int, int]]:
    """(end time on its env's clock, env) of every skill, as received; env i runs the skills ``plans[i]``."""
    arg_dim = venv.action_space["arg"].shape[0]
    next_skill = [0] * venv.num_envs
    received = []

    def start(indices: list[int]) -> None:
        indices = [i for i in indices if next_skill[i] < len(plans[i])]
        venv.send(indices, [skill(plans[i][next_skill[i]], arg_dim) for i in indices])
        for i in indices:
            next_skill[i] += 1

    start(venv.idle_envs())
    for _ in range(sum(len(plan) for plan in plans)):
        i, *_ = venv.receive()
        received.append((int(venv.clocks[i]), i))
        start([i])
    return received


def test_toy_skills_end_in_the_order_of_their_low_level_end_times_however_late_a_process_runs() -> None:
    # Toy skill d runs d + 1 low-level steps; env 0 runs long skills, env 1 short ones, env 2 a mix.
    plans = [[3, 3, 2, 3, 0, 1], [0, 1, 0, 0, 1, 0, 0, 2, 0], [2, 0, 3, 1, 1]]
    expected = sorted((int(np.cumsum(np.array(plan) + 1)[k]), i) for i, plan in enumerate(plans)
                      for k in range(len(plan)))
    for late in (0.0, 0.02):
        venv = AsyncSkillVecEnv([toy(50, late), toy(50), toy(50)], start_method="fork")
        try:
            venv.reset()
            assert ends(venv, plans) == expected
        finally:
            venv.close()


def test_kitchen_skills_end_in_one_order_however_late_a_process_runs() -> None:
    # Kitchen workers report every low-level step; the skill lengths come from the simulator.
    rng = np.random.default_rng(3)
    plans = [rng.integers(0, 8, size=8).tolist() for _ in range(2)]
    orders = []
    for late in (0.0, 0.05):
        venv = AsyncSkillVecEnv([kitchen(late), kitchen()], start_method="fork")
        try:
            venv.seed(5)
            venv.reset()
            received = ends(venv, plans)
            lengths = venv.get_attr("skill_steps")
            venv.send([1], [skill(2, 5)])
            *_, info = venv.receive()
            assert venv._steps[1] == info["skill_steps"]  # its worker counted every low-level step in shared memory
        finally:
            venv.close()
        assert received == sorted(received)  # (end time, env) only grows
        assert len(set(lengths[0] + lengths[1])) > 2  # skills of different lengths
        assert [t for t, i in received if i == 0] == np.cumsum(lengths[0]).tolist()
        orders.append(received)
    assert orders[0] == orders[1]


def test_step_steps_every_env_and_returns_them_in_order() -> None:
    venv = AsyncSkillVecEnv([toy(3), toy(5)], start_method="fork")
    reference = DummyVecEnv([toy(3), toy(5)])
    plan = [[2, 0], [0, 1], [1, 1], [3, 0]]
    try:
        for env in (venv, reference):
            env.seed(1)
        np.testing.assert_array_equal(venv.reset(), reference.reset())
        dones = []
        for skills in plan:
            actions = [skill(d, 2) for d in skills]
            got, want = venv.step(actions), reference.step(actions)
            for a, b in zip(got[:3], want[:3], strict=True):
                np.testing.assert_array_equal(a, b)
            assert [info["skill_steps"] for info in got[3]] == [d + 1 for d in skills]
            if got[2][0]:  # env 0's episode of 3 decisions ended, and it started the next one itself
                np.testing.assert_array_equal(got[3][0]["terminal_observation"], want[3][0]["terminal_observation"])
            dones.append(got[2].tolist())
        assert dones == [[False, False], [False, False], [True, False], [False, False]]
        assert venv.clocks.tolist() == [sum(d + 1 for d in column) for column in zip(*plan, strict=True)]
    finally:
        venv.close()


def test_a_skill_is_received_once_before_its_env_gets_another() -> None:
    venv = AsyncSkillVecEnv([toy(5)], start_method="fork")
    try:
        venv.reset()
        with pytest.raises(RuntimeError, match="no skill is running: send"):
            venv.receive()
        venv.send([0], [skill(1, 2)])
        with pytest.raises(RuntimeError, match="env 0 has a skill that has not been received yet"):
            venv.send([0], [skill(1, 2)])
    finally:
        venv.close()  # with a skill still running: it is let end first


def learn(envs: list[Callable[[], gym.Env]], seed: int, vec_env: type = AsyncSkillVecEnv,
          learning_starts: int = 20) -> tuple[SkillSAC, Any]:
    venv = vec_env(envs, start_method="fork") if vec_env is AsyncSkillVecEnv else vec_env(envs)
    model = SkillSAC("SkillPolicy", venv, learning_starts=learning_starts, batch_size=8, gamma=0.9,
                     gamma_per_step=True, policy_kwargs={"net_arch": [32, 32]}, seed=seed)
    model.learn(120)
    return model, venv


def weights(model: SkillSAC) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.policy.state_dict().values()]


def stored(model: SkillSAC) -> dict[str, np.ndarray]:
    buffer = model.replay_buffer
    return {name: getattr(buffer, name)[:buffer.pos].copy()
            for name in ("observations", "next_observations", "actions", "rewards", "dones", "skill_steps")}


def test_skill_sac_repeats_its_run_however_late_a_process_runs_and_keeps_the_books() -> None:
    runs = []
    for late in (0.0, 0.01):
        model, venv = learn([toy(7, late), toy(10)], seed=0)
        try:
            logs = [venv.get_attr(name) for name in ("skill_steps", "skill_rewards", "episode_low_level_lengths")]
            idle = venv.idle_envs()
            runs.append((weights(model), stored(model)))
        finally:
            venv.close()
        steps, rewards, episodes = logs
        for i in set(range(2)) - set(idle):  # the skill still running when learn ended is not the model's
            if sum(steps[i]) == sum(episodes[i]):
                episodes[i] = episodes[i][:-1]
            steps[i], rewards[i] = steps[i][:-1], rewards[i][:-1]
        buffer = model.replay_buffer
        assert model.num_timesteps == buffer.pos == 120 and buffer.n_envs == 1
        assert model.num_low_level_steps == sum(map(sum, steps)) == sum(venv.clocks)
        assert sorted(buffer.skill_steps[:120, 0]) == sorted(steps[0] + steps[1])
        discounted = [float(np.sum(r * 0.9 ** np.arange(len(r)))) for r in rewards[0] + rewards[1]]
        np.testing.assert_allclose(sorted(buffer.rewards[:120, 0]), sorted(discounted), rtol=1e-6)
        assert sorted(model._ep_low_level_len_buffer) == sorted(map(float, episodes[0] + episodes[1]))
        assert model._n_updates == 100
    (weights_a, stored_a), (weights_b, stored_b) = runs
    for a, b in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(a, b)
    for name in stored_a:
        np.testing.assert_array_equal(stored_a[name], stored_b[name], err_msg=name)

    other, venv = learn([toy(7), toy(10)], seed=1)
    venv.close()
    assert not np.array_equal(stored(other)["actions"], stored_a["actions"])


def test_with_one_env_skill_sac_collects_exactly_as_on_a_dummy_vec_env() -> None:
    # Without gradient steps (all 120 decisions from the prior): the same draws, transitions and bookkeeping.
    # With them the runs part, as an env's next skill is chosen before the gradient step of its last decision.
    (model, venv), (reference, _) = [learn([toy(7)], 2, vec_env, learning_starts=120)
                                     for vec_env in (AsyncSkillVecEnv, DummyVecEnv)]
    venv.close()
    for name, values in stored(reference).items():
        np.testing.assert_array_equal(stored(model)[name], values, err_msg=name)
    assert model.num_low_level_steps == reference.num_low_level_steps
    assert list(model._ep_low_level_len_buffer) == list(reference._ep_low_level_len_buffer)
    assert model._skill_counts.tolist() == reference._skill_counts.tolist()


def test_an_env_that_fails_is_named_with_its_error_and_the_others_close_cleanly() -> None:
    venv = AsyncSkillVecEnv([toy(5), toy(5), toy(5, late=30, least=30)], start_method="fork")
    try:
        venv.reset()
        venv.send([0, 1], [skill(1, 2), {"skill": 1}])
        with pytest.raises(RuntimeError, match=r"env 1 failed in its skill:(.|\n)*ValueError: Expected an action"):
            venv.receive()
        assert venv.receive()[0] == 0
        venv.send([1], [skill(0, 2)])  # the failed skill is gone; the env takes the next one
        assert venv.receive()[0] == 1
        with pytest.raises(AttributeError, match=r"env 0 failed at 'get':(.|\n)*no_such_attribute"):
            venv.get_attr("no_such_attribute")
        assert not venv.has_attr("no_such_attribute") and venv.has_attr("skill_steps")
        with pytest.raises(RuntimeError, match=r"env 0 failed at 'call':(.|\n)*seed"):
            venv.env_method("reset", seed="not a seed", indices=[0])

        venv.processes[1].kill()
        venv.processes[1].join()
        with pytest.raises(RuntimeError, match=r"the process of env 1 has ended \(exit code -9\)"):
            venv.send([1], [skill(0, 2)])
        for use in (lambda: venv.send([2], [skill(0, 2)]), venv.reset, lambda: venv.get_attr("skill_steps")):
            with pytest.raises(RuntimeError, match=r"env 1 has ended \(exit code -9\); close\(\) this AsyncSkillVecEnv"
                                                   " and make a new one"):
                use()
    finally:
        venv.close()
    assert not any(process.is_alive() for process in venv.processes)


def test_an_env_killed_during_its_skill_is_named() -> None:
    venv = AsyncSkillVecEnv([toy(5), toy(5, late=30, least=30)], start_method="fork")
    try:
        venv.reset()
        venv.send([1], [skill(3, 2)])  # env 1 sleeps 30 s before its skill
        venv.processes[1].kill()
        with pytest.raises(RuntimeError, match=r"the process of env 1 has ended \(exit code -9\)"):
            venv.receive()
    finally:
        venv.close()
    assert not any(process.is_alive() for process in venv.processes)


def not_made() -> gym.Env:
    raise ValueError("no such scene")


@pytest.mark.parametrize("failing", [0, 1])
def test_an_env_that_cannot_be_made_is_named_with_its_error(failing: int) -> None:
    factories = [toy(5), toy(5)]
    factories[failing] = not_made
    with pytest.raises(RuntimeError, match=rf"env {failing} failed at 'spaces':\nthe env could not be made:(.|\n)*"
                                           "ValueError: no such scene"):
        AsyncSkillVecEnv(factories, start_method="fork")
    assert not mp.active_children()


class Timeout(RuntimeError):
    """What a user's timeout helper might raise from its signal handler."""


@pytest.mark.parametrize(("error", "cut"), [(KeyboardInterrupt, "receive"), (Timeout, "get_attr"), (Timeout, "close")])
def test_an_exchange_cut_half_way_leaves_the_env_unusable_and_close_ends_the_workers(error: type, cut: str) -> None:
    """Ctrl-C to the learner alone, or any exception from a signal handler, while it waits for a skill."""
    def cut_short(*_: Any) -> None:
        raise error()

    venv = AsyncSkillVecEnv([toy(5), toy(5, late=30, least=30)], start_method="fork")
    previous = signal.signal(signal.SIGALRM, cut_short)
    try:
        venv.reset()
        venv.send([0, 1], [skill(3, 2), skill(0, 2)])  # env 1 sleeps 30 s before its skill
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(error):  # each waits for env 1's skill
            {"receive": venv.receive, "get_attr": lambda: venv.get_attr("n_states"), "close": venv.close}[cut]()
        if cut != "close":
            with pytest.raises(RuntimeError, match=rf"stopped half-way .*{error.__name__}.*; close\(\) this "
                                                   "AsyncSkillVecEnv and make a new one"):
                venv.reset()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        start = time.monotonic()
        venv.close()
    assert time.monotonic() - start < 10 and not any(process.is_alive() for process in venv.processes)


class FailsAtSkill(gym.Wrapper):
    def step(self, action: Any) -> Any:
        raise ValueError(f"skill {action['skill']} cannot run here")


def test_a_step_in_which_envs_fail_names_each_and_leaves_every_env_idle() -> None:
    venv = AsyncSkillVecEnv([lambda: FailsAtSkill(ToySkillEnv()), toy(5), lambda: FailsAtSkill(ToySkillEnv())],
                            start_method="fork")
    try:
        venv.reset()
        with pytest.raises(RuntimeError, match=r"env 0 failed in its skill(.|\n)*env 2 failed in its skill"):
            venv.step([skill(1, 2)] * 3)
        assert venv.idle_envs() == [0, 1, 2] and venv.reset().shape == (3, 3)
    finally:
        venv.close()


def test_wrong_actions_are_refused_before_any_skill_starts() -> None:
    venv = AsyncSkillVecEnv([toy(5)] * 3, start_method="fork")
    try:
        venv.reset()
        with pytest.raises(ValueError, match="one action per env"):
            venv.step([skill(1, 2)] * 2)
        with pytest.raises(ValueError, match="one action per env"):
            venv.step({"skill": np.array([1, 2, 0]), "arg": np.zeros((3, 2), np.float32)})
        with pytest.raises(ValueError, match=r"1 actions for 2 envs \[0, 1\]"):
            venv.send([0, 1], [skill(1, 2)])
        for indices in ([0, 0], [1, 3], [0, True], [0, 1.0]):
            with pytest.raises(ValueError, match=r"distinct envs of 0\.\.2"):
                venv.send(indices, [skill(1, 2)] * 2)
        assert venv.idle_envs() == [0, 1, 2]
        assert venv.step([skill(1, 2)] * 3)[0].shape == (3, 3)
    finally:
        venv.close()


class CountsLowLevelSteps(gym.Wrapper):
    """Reports each low-level step of a toy skill to ``on_low_level_step``, as SkillSpaceEnv does."""

    on_low_level_step: Callable[[], None] | None = None

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        result = self.env.step(action)
        for _ in range(result[4]["skill_steps"]):
            if self.on_low_level_step is not None:
                self.on_low_level_step()
        return result


def test_env_methods_between_skills_get_their_own_answers() -> None:
    """A wake-up asked for during a skill that ended first must not answer a later command."""
    def counting(late: float = 0.0) -> Callable[[], gym.Env]:
        return lambda: Late(CountsLowLevelSteps(ToySkillEnv(max_decisions=50)), late, late)

    venv = AsyncSkillVecEnv([counting(late=1.0), counting()], start_method="fork")
    try:
        venv.reset()
        venv.send([0, 1], [skill(0, 2), skill(3, 2)])  # env 0 (late) ends at 1, env 1 at 4
        assert [venv.receive()[0] for _ in range(2)] == [0, 1]
        assert venv._wanted[0] > 0  # the learner asked env 0 to wake it at step 4 of a 1-step skill
        obs, reward, terminated, truncated, info = venv.env_method("step", skill(3, 2), indices=[0])[0]
        assert info["skill_steps"] == 4
        assert venv.get_attr("max_decisions", indices=[0]) == [50]
    finally:
        venv.close()


class Frame(gym.Wrapper):
    """Renders a 2x2 frame of one colour."""

    def __init__(self, env: gym.Env, colour: int, render_mode: str | None = "rgb_array"):
        super().__init__(env)
        self.colour, self._render_mode = colour, render_mode

    @property
    def render_mode(self) -> str | None:
        return self._render_mode

    def render(self) -> np.ndarray:
        return np.full((2, 2, 3), self.colour, np.uint8)


def test_get_images_renders_every_env() -> None:
    venv = AsyncSkillVecEnv([lambda: Frame(ToySkillEnv(), 3), lambda: Frame(ToySkillEnv(), 4)], start_method="fork")
    try:
        venv.reset()
        assert [image[0, 0, 0] for image in venv.get_images()] == [3, 4]
    finally:
        venv.close()
    venv = AsyncSkillVecEnv([lambda: Frame(ToySkillEnv(), 3, render_mode=None)], start_method="fork")
    try:
        with pytest.warns(UserWarning, match="rgb_array is needed"):
            assert venv.get_images() == [None]
    finally:
        venv.close()


def test_make_vec_env_builds_it_with_monitors_whose_episodes_skill_sac_logs() -> None:
    envs = make_vec_env(toy(7), n_envs=2, seed=0, vec_env_cls=AsyncSkillVecEnv,
                        vec_env_kwargs={"start_method": "fork"})
    try:
        model = SkillSAC("SkillPolicy", envs, learning_starts=10, batch_size=8, seed=0)
        model.learn(40)
        assert envs.env_is_wrapped(Monitor) == [True, True]
    finally:
        envs.close()
    assert len(model.ep_info_buffer) >= 4 and {episode["l"] for episode in model.ep_info_buffer} == {7}
    with pytest.raises(RuntimeError, match="this AsyncSkillVecEnv is closed"):
        envs.reset()


def test_skill_sac_refuses_what_it_cannot_collect_from_an_async_skill_vec_env_correctly(tmp_path: Path) -> None:
    venv = AsyncSkillVecEnv([toy(5)] * 2, start_method="fork")
    try:
        for wrapper in (VecMonitor, VecNormalize):
            with pytest.raises(ValueError, match=f"a {wrapper.__name__} around it would not see"):
                SkillSAC("SkillPolicy", wrapper(venv), seed=0)
        with pytest.raises(ValueError, match="optimize_memory_usage .* another env's skill"):
            SkillSAC("SkillPolicy", venv, optimize_memory_usage=True,
                     replay_buffer_kwargs={"handle_timeout_termination": False}, seed=0)
        on_async = SkillSAC("SkillPolicy", venv, learning_starts=5, batch_size=8, seed=0)
        on_dummy = SkillSAC("SkillPolicy", DummyVecEnv([toy(5)] * 2), learning_starts=5, batch_size=8, seed=0)
        with pytest.raises(ValueError, match="keeps 1 transition.* DummyVecEnv needs 2"):
            on_async.set_env(DummyVecEnv([toy(5)] * 2))
        with pytest.raises(ValueError, match="keeps 2 transition.* AsyncSkillVecEnv needs 1"):
            on_dummy.set_env(venv)
        on_dummy.save_replay_buffer(tmp_path / "buffer.pkl")
        with pytest.raises(ValueError, match="keeps 2 transition.* AsyncSkillVecEnv needs 1"):
            on_async.load_replay_buffer(tmp_path / "buffer.pkl")
        assert on_async.replay_buffer.n_envs == 1  # its own buffer is kept
        on_async.learn(20)
        other = AsyncSkillVecEnv([toy(5)] * 2, start_method="fork")
        try:
            on_async.set_env(other)  # the same kind of env: its skills are started afresh
            on_async.learn(20, reset_num_timesteps=False)
        finally:
            other.close()
        assert on_async.num_timesteps == 40
    finally:
        venv.close()


class StepLog(BaseCallback):
    """What SB3 callbacks read of a step."""

    def _on_step(self) -> bool:
        self.steps = getattr(self, "steps", [])
        self.steps.append({name: self.locals[name] for name in ("actions", "rewards", "dones", "infos", "new_obs")})
        return True


@pytest.mark.filterwarnings("ignore::tqdm.TqdmExperimentalWarning")  # SB3's bar is tqdm.rich
def test_callbacks_see_one_ended_skill_per_step_under_sb3_names() -> None:
    venv = AsyncSkillVecEnv([toy(5)] * 3, start_method="fork")
    try:
        model = SkillSAC("SkillPolicy", venv, learning_starts=10, batch_size=8, seed=0)
        log, bar = StepLog(), DecisionProgressBar()
        model.learn(10**6, callback=[log, StopTrainingOnMaxEpisodes(4), bar])
    finally:
        venv.close()
    # StopTrainingOnMaxEpisodes(4) stops learn at the 4 x 3rd episode end, whichever envs ended them.
    assert len(log.steps) == model.num_timesteps == bar.pbar.n > 0
    assert sum(int(step["dones"].sum()) for step in log.steps) == 12 and log.steps[-1]["dones"][0]
    for step in log.steps:  # batches of one env's step, as SB3 gives a batch of N
        assert len(step["actions"]) == len(step["rewards"]) == len(step["dones"]) == len(step["infos"]) == 1
        assert step["actions"]["skill"].shape == (1,) and step["actions"]["arg"].shape == (1, 2)
        assert step["new_obs"].shape == (1, 3) and step["infos"][0]["skill_steps"] >= 1


class InterruptAt(BaseCallback):
    """Ctrl-C while a callback runs (say, a long evaluation), after a skill was received and before it is stored."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def _on_step(self) -> bool:
        if self.n_calls == self.step:
            raise KeyboardInterrupt
        return True


def test_learn_cut_outside_the_envs_goes_on_from_fresh_episodes() -> None:
    venv = AsyncSkillVecEnv([toy(10)] * 2, start_method="fork")
    try:
        model = SkillSAC("SkillPolicy", venv, learning_starts=10**9, seed=0)
        with pytest.raises(KeyboardInterrupt):
            model.learn(1000, callback=InterruptAt(30))
        model.learn(100, reset_num_timesteps=False)
    finally:
        venv.close()
    buffer = model.replay_buffer
    states = buffer.observations[:buffer.pos, 0].argmax(-1)
    next_states = buffer.next_observations[:buffer.pos, 0].argmax(-1)
    assert buffer.pos > 100 and np.all(next_states == (states + 1) % 3)


def test_learning_in_chunks_goes_on_from_where_every_env_is() -> None:
    """Toy observations are one-hot states that advance by one per decision: every stored transition must go from
    a state to the next, also across the stops of StopAtLowLevelSteps."""
    venv = AsyncSkillVecEnv([toy(10)] * 2, start_method="fork")
    try:
        model = SkillSAC("SkillPolicy", venv, learning_starts=10**9, seed=0)
        for chunk in range(1, 8):
            model.learn(10**6, callback=StopAtLowLevelSteps(100 * chunk), reset_num_timesteps=False)
        ran = int(venv.clocks.sum())  # every low-level step of every skill received since the one reset
    finally:
        venv.close()
    buffer = model.replay_buffer
    states = buffer.observations[:buffer.pos, 0].argmax(-1)
    next_states = buffer.next_observations[:buffer.pos, 0].argmax(-1)
    assert buffer.pos > 100 and np.all(next_states == (states + 1) % buffer.observations.shape[-1])
    assert model.num_low_level_steps == ran
