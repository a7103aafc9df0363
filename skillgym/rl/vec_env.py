"""AsyncSkillVecEnv: skill-space envs in subprocesses whose skills end one at a time, in a fixed order.

SB3's ``SubprocVecEnv`` steps N envs together: a vector step returns when the longest of its N skills has
ended, and every env whose skill was shorter waits for it. Here each env gets its next skill as soon as its
last one has been handed to the learner (:meth:`AsyncSkillVecEnv.send` / :meth:`AsyncSkillVecEnv.receive`),
so no env waits for another's skill.

The order in which ended skills are handed out does not depend on which process runs faster: it is the order
of low-level time, as if all envs stepped at the same pace. Each env keeps a clock, the low-level steps it has
run since the last ``reset``; :meth:`receive` returns the skill that ends earliest on those clocks (ties to the
lower env index), and waits only until every env still running has passed that time. Workers count the
low-level steps of a running skill in shared memory (through a :class:`~skillgym.envs.skill_space.SkillSpaceEnv`'s
``on_low_level_step``) and wake the learner when it waits for that count, so the wait is short; an env without
that attribute gives the same order after longer waits. A skill's length is its ``info["skill_steps"]`` (1 if
absent). The same seeds give the same transitions in the same order, so a learner that draws its actions in
that order (``SkillSAC``) repeats its run exactly.

Example:
    >>> from skillgym.envs.toy import ToySkillEnv
    >>> venv = AsyncSkillVecEnv([ToySkillEnv, ToySkillEnv], start_method="fork")
    >>> venv.seed(0)
    [0, 1]
    >>> obs = venv.reset()
    >>> venv.send([0, 1], [{"skill": 2, "arg": np.zeros(2, np.float32)}, {"skill": 0, "arg": np.zeros(2, np.float32)}])
    >>> [venv.receive()[0] for _ in range(2)]  # skill d runs d + 1 low-level steps: env 1's ends first
    [1, 0]
    >>> venv.close()
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.vec_env.base_vec_env import (
    CloudpickleWrapper,
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

# The SkillSpaceEnv attribute a worker sets to hear of each low-level step.
PROGRESS_HOOK = "on_low_level_step"
# How long close() lets each env close itself before it ends the process.
CLOSE_SECONDS = 30


def _exchange(method: Callable[..., Any]) -> Callable[..., Any]:
    """An exchange with the workers that, cut half-way (Ctrl-C, an exception from a signal handler), leaves the
    env unusable rather than out of step: an answer may have been read without being recorded, or a command sent
    without its answer read. Only the errors this module raises with its bookkeeping in order (:func:`_in_order`)
    leave it usable."""
    @functools.wraps(method)
    def guarded(self: AsyncSkillVecEnv, *args: Any, **kwargs: Any) -> Any:
        self._check_open()
        try:
            return method(self, *args, **kwargs)
        except BaseException as e:
            if not _is_in_order(e) and not self._broken:
                self._broken = f"an earlier call stopped half-way through an exchange with the envs ({e!r})"
            raise
    return guarded


def _in_order(error: Exception) -> Exception:
    """``error``, raised where the commands sent and the answers read are all recorded."""
    error.in_order = True  # type: ignore[attr-defined]
    return error


def _is_in_order(error: BaseException) -> bool:
    return getattr(error, "in_order", False)


class SkillFailed(RuntimeError):
    """An env raised while running its skill; it is idle again and takes the next one."""

    def __init__(self, env: int, trace: str):
        super().__init__(f"env {env} failed in its skill:\n{trace}")
        self.env = env


def _run_worker(remote: Connection, parent_remote: Connection, make_env: CloudpickleWrapper, index: int,
                steps: Any, wanted: Any) -> None:
    """One env in its own process, answering the commands of :class:`AsyncSkillVecEnv` one at a time.

    It sends ``(kind, data)``: ``("ended", skill)`` when a skill ends, ``("answer", value)`` to any other command,
    ``("error", (whether an AttributeError, traceback))`` when one fails, and ``("progress", None)`` once the
    running skill has run ``wanted[index]`` low-level steps (it counts them in ``steps[index]``), to wake a
    learner that waits for that.
    """
    parent_remote.close()
    try:
        env: gym.Env | None = make_env.var()
    except Exception:
        env, not_made = None, traceback.format_exc()  # the answer to every command, so the learner hears of it
    woken_at = 0  # the count the learner was last woken at, in this skill
    in_skill = False  # an env method called between skills (say, step) must not wake the learner

    def count_step() -> None:
        nonlocal woken_at
        if not in_skill:
            return
        steps[index] += 1
        if steps[index] >= wanted[index] > woken_at:
            woken_at = int(wanted[index])
            remote.send(("progress", None))

    try:
        if env is not None:
            env.get_wrapper_attr(PROGRESS_HOOK)
            env.set_wrapper_attr(PROGRESS_HOOK, count_step)
    except AttributeError:
        pass  # not a SkillSpaceEnv: the learner waits for its skills' ends instead
    while True:
        try:
            command, data = remote.recv()
            if command == "close":
                if env is not None:
                    env.close()
                break
            if env is None:
                remote.send(("error", (False, f"the env could not be made:\n{not_made}")))
                continue
            if command == "skill":
                woken_at, in_skill = 0, True
                try:
                    ended = _run_skill(env, data)
                finally:
                    in_skill = False
                remote.send(("ended", ended))
                continue
            if command == "reset":
                seed, options = data
                answer = env.reset(seed=seed, **({"options": options} if options else {}))
            elif command == "get":
                answer = env.get_wrapper_attr(data)
            elif command == "set":
                answer = env.set_wrapper_attr(*data)
            elif command == "call":
                name, args, kwargs = data
                answer = env.get_wrapper_attr(name)(*args, **kwargs)
            elif command == "is_wrapped":
                answer = is_wrapped(env, data)
            else:  # "spaces"
                answer = (env.observation_space, env.action_space)
            remote.send(("answer", answer))
        except (EOFError, KeyboardInterrupt):  # the learner has gone, or Ctrl-C reached every process
            break
        except Exception as error:
            remote.send(("error", (isinstance(error, AttributeError), traceback.format_exc())))
    remote.close()


def _run_skill(env: gym.Env, action: Any) -> tuple[int, Any, float, bool, dict[str, Any], dict[str, Any]]:
    """``(low-level steps, obs, reward, done, info, reset info)`` of one skill, starting the next episode when
    this one ends as SB3's vector envs do (its last observation in ``info["terminal_observation"]``)."""
    obs, reward, terminated, truncated, info = env.step(action)
    done = terminated or truncated
    info["TimeLimit.truncated"] = truncated and not terminated
    reset_info: dict[str, Any] = {}
    if done:
        info["terminal_observation"] = obs
        obs, reset_info = env.reset()
    return max(1, int(info.get("skill_steps", 1))), obs, float(reward), bool(done), info, reset_info


class AsyncSkillVecEnv(VecEnv):
    """N skill-space envs, each in its own process, that run their skills without waiting for each other.

    A SB3 ``VecEnv``: ``step`` steps all envs together as ``SubprocVecEnv`` does. The asynchronous interface
    is :meth:`send` (start skills in some envs) and :meth:`receive` (the next skill to end, in the order of
    low-level time; see the module docstring); ``SkillSAC`` collects through it when given this env.
    As in SB3's vector envs, an env whose episode ends starts the next one itself (the last observation is
    in ``info["terminal_observation"]``). An env that raises is named with its traceback and can go on; an env
    that cannot be made, a worker process that dies or a call cut half-way (Ctrl-C) leaves the whole vector env
    unusable, which later calls say: ``close()`` it (that ends the workers) and make a new one.

    :param env_fns: functions that build the envs, called in the subprocesses
    :param start_method: multiprocessing start method (default ``"forkserver"`` where available, as SB3's)
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], start_method: str | None = None):
        if start_method is None:
            start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        context = mp.get_context(start_method)
        # Per env: the low-level steps of its running skill, and the count at which it should wake the learner.
        self._steps, self._wanted = context.RawArray("q", len(env_fns)), context.RawArray("q", len(env_fns))
        self.remotes: list[Connection] = []
        self.processes = []
        for i, make_env in enumerate(env_fns):
            remote, work_remote = context.Pipe()
            args = (work_remote, remote, CloudpickleWrapper(make_env), i, self._steps, self._wanted)
            process = context.Process(target=_run_worker, args=args,
                                      daemon=True)  # a crashed learner must not leave workers behind
            process.start()
            work_remote.close()
            self.remotes.append(remote)
            self.processes.append(process)
        self.clocks = np.zeros(len(env_fns), np.int64)  # low-level steps each env has run since reset
        self._started: dict[int, int] = {}  # running env -> its clock when its skill started
        self._ended: dict[int, tuple] = {}  # env -> its ended skill, not yet handed out
        self._actions: Sequence[Any] = []
        self.closed = False
        self._broken: str | None = None  # why the envs cannot be used any more, if they cannot
        try:
            observation_space, action_space = self._ask(range(len(env_fns)), "spaces", None)[0]
        except BaseException:
            self.close()
            raise
        super().__init__(len(env_fns), observation_space, action_space)

    # -- asynchronous interface -----------------------------------------------------------------------------
    def idle_envs(self) -> list[int]:
        """The envs that run no skill and hold no ended one: the ones waiting for :meth:`send`."""
        return [i for i in range(self.num_envs) if i not in self._started and i not in self._ended]

    @_exchange
    def send(self, indices: Iterable[int], actions: Iterable[Any]) -> None:
        """Start one skill in each env of ``indices`` (idle envs only; one action per env, in that order)."""
        if isinstance(actions, Mapping):
            raise _in_order(ValueError("actions are one per env (a list, SkillActions, or an array with one row per "
                                       f"env), not a dict of batches ({sorted(actions)})"))
        indices, actions = list(indices), list(actions)
        if len(indices) != len(actions):
            raise _in_order(ValueError(f"{len(actions)} actions for {len(indices)} envs {indices}"))
        if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= i < self.num_envs
                   for i in indices) or len(set(indices)) != len(indices):
            raise _in_order(ValueError(f"indices must be distinct envs of 0..{self.num_envs - 1}, got {indices}"))
        for i in indices:
            if i in self._started or i in self._ended:
                raise _in_order(RuntimeError(f"env {i} has a skill that has not been received yet; receive() it "
                                             "first"))
        for i, action in zip(indices, actions, strict=True):
            self._steps[i] = self._wanted[i] = 0  # the worker counts from here, and is done with its last skill
            try:
                self.remotes[i].send(("skill", action))
            except (BrokenPipeError, ConnectionResetError):
                raise self._ended_process(i) from None
            self._started[i] = int(self.clocks[i])

    @_exchange
    def receive(self) -> tuple[int, VecEnvObs, float, bool, dict[str, Any]]:
        """``(env index, observation, reward, done, info)`` of the next skill to end in low-level time."""
        if not self._started and not self._ended:
            raise _in_order(RuntimeError("no skill is running: send() one first"))
        while True:
            first = min(self._ended, key=lambda i: (self._end_time(i), i), default=None)
            if first is not None:
                time = self._end_time(first)
                behind = [j for j in self._started if not self._passed(j, time, first)]
                for j in behind:  # wake me when you have passed ``time``
                    self._wanted[j] = time - self._started[j] + (0 if j > first else 1)
                if all(self._passed(j, time, first) for j in behind):  # (they may have, meanwhile)
                    steps, obs, reward, done, info, self.reset_infos[first] = self._ended.pop(first)
                    self.clocks[first] += steps
                    return first, obs, reward, done, info
            self._read(wait([self.remotes[j] for j in self._started]))

    def _end_time(self, i: int) -> int:
        return int(self.clocks[i]) + self._ended[i][0]

    def _passed(self, j: int, time: int, i: int) -> bool:
        """Whether running env j's skill surely ends after (time, i): it has run past ``time``, or up to it with
        a higher index (a skill runs at least one step)."""
        earliest_end = self._started[j] + max(1, self._steps[j])
        return earliest_end > time or (earliest_end == time and j > i)

    def _read(self, ready: list[Any]) -> None:
        """Take in one message of each env in ``ready`` (all running a skill)."""
        for remote in ready:
            j = self.remotes.index(remote)
            kind, data = self._message(j)
            if kind == "progress":  # it has counted the steps asked for: look again
                continue
            del self._started[j]
            if kind == "error":
                raise _in_order(SkillFailed(j, data[1]))
            self._ended[j] = data

    def _message(self, j: int) -> tuple[str, Any]:
        try:
            return self.remotes[j].recv()
        except (EOFError, ConnectionResetError):
            self._started.pop(j, None)
            raise self._ended_process(j) from None

    def _ended_process(self, j: int) -> RuntimeError:
        self.processes[j].join(timeout=1)
        self._broken = f"the process of env {j} has ended (exit code {self.processes[j].exitcode})"
        return _in_order(RuntimeError(f"{self._broken}; close() this AsyncSkillVecEnv and make a new one"))

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this AsyncSkillVecEnv is closed: its processes have ended")
        if self._broken:
            raise RuntimeError(f"{self._broken}; close() this AsyncSkillVecEnv and make a new one")

    def _settle(self) -> None:
        """Wait until no skill runs (their ends are kept for :meth:`receive`), so commands get their answers."""
        while self._started:
            self._read(wait([self.remotes[j] for j in self._started]))

    # -- SB3 VecEnv interface -------------------------------------------------------------------------------
    @_exchange
    def reset(self) -> VecEnvObs:
        """Reset every env (skills still running are let end and dropped) and their clocks."""
        results = self._ask(None, "reset", None, [(self._seeds[i], self._options[i]) for i in range(self.num_envs)])
        self._ended.clear()
        obs, reset_infos = zip(*results, strict=True)
        self.reset_infos = list(reset_infos)
        self.clocks[:] = 0
        self._reset_seeds()
        self._reset_options()
        return _stack(obs)

    def step_async(self, actions: np.ndarray) -> None:
        """Start a skill in every env (``step``: all envs at once, as SB3's vector envs)."""
        if isinstance(actions, Mapping) or len(actions) != self.num_envs:
            raise _in_order(ValueError(f"step() takes one action per env ({self.num_envs}), got {actions!r}"))
        self._actions = actions

    @_exchange
    def step_wait(self) -> VecEnvStepReturn:
        """Wait for the skills of :meth:`step_async` to end, every one of them (if some fail, the others end too
        before their errors are raised, so the envs are idle again)."""
        self.send(range(self.num_envs), self._actions)
        results, failures = [], []
        while self._started or self._ended:
            try:
                results.append(self.receive())
            except SkillFailed as failure:
                failures.append(failure)
        if failures:
            raise _in_order(RuntimeError("\n".join(str(f) for f in sorted(failures, key=lambda f: f.env))))
        _, obs, rewards, dones, infos = zip(*sorted(results, key=lambda result: result[0]), strict=True)
        return _stack(obs), np.array(rewards), np.array(dones), list(infos)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if not self._broken:  # else the workers may wait on an exchange that will not go on
                while self._started:  # a worker blocked on a full pipe would never read "close"
                    try:
                        self._settle()
                    except RuntimeError as error:  # an env that failed or died has nothing more to say
                        if not _is_in_order(error):
                            raise
                for remote, process in zip(self.remotes, self.processes, strict=True):
                    if process.is_alive():
                        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it may be ending anyway
                            remote.send(("close", None))
                for process in self.processes:
                    process.join(timeout=CLOSE_SECONDS)
        finally:  # what is left: a broken exchange, a close cut short (Ctrl-C), an env that hangs in its close
            for process in self.processes:
                if process.is_alive():
                    process.terminate()
                process.join()

    @_exchange
    def _ask(self, indices: VecEnvIndices, command: str, data: Any, per_env: list[Any] | None = None) -> list[Any]:
        """Send ``(command, data)`` (or env i's entry of ``per_env``) to the envs ``indices`` once no skill runs,
        and return their answers."""
        self._settle()
        envs = self._get_indices(indices)
        for i in envs:
            try:
                self.remotes[i].send((command, data if per_env is None else per_env[i]))
            except (BrokenPipeError, ConnectionResetError):
                raise self._ended_process(i) from None
        answers = [self._message(i) for i in envs]
        for i, (kind, answer) in zip(envs, answers, strict=True):
            if kind == "error":
                missing, text = answer  # an AttributeError stays one: SB3's has_attr asks get_attr
                raise _in_order((AttributeError if missing else RuntimeError)(f"env {i} failed at {command!r}:\n{text}"))
        return [answer for _, answer in answers]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._ask(indices, "get", attr_name)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._ask(indices, "set", (attr_name, value))

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return self._ask(indices, "call", (method_name, method_args, method_kwargs))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self._ask(indices, "is_wrapped", wrapper_class)

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Each env's ``render()`` (once no skill runs), for ``render()`` and SB3's ``VecVideoRecorder``."""
        if self.render_mode != "rgb_array":  # as SB3's SubprocVecEnv
            warnings.warn(f"the render mode is {self.render_mode}, but rgb_array is needed to get images", stacklevel=2)
            return [None] * self.num_envs
        return self.env_method("render")


def _stack(observations: Sequence[Any]) -> VecEnvObs:
    """Observations of N envs as one batch (a dict of batches for Dict observations)."""
    if isinstance(observations[0], dict):
        return {key: np.stack([obs[key] for obs in observations]) for key in observations[0]}
    return np.stack(observations)
