"""Franka Kitchen task env: ordered subtasks, +1 per subtask, optional fast pixel observations.

The ground floor of skillgym: the data stage drives it to record demonstrations and
``SkillSpaceEnv`` wraps it. It imports no stage.

Example:
    >>> env = KitchenTaskEnv(tasks=("microwave", "kettle"), pixels=True, image_size=64)
    >>> obs, info = env.reset(seed=0)
    >>> obs["pixels"].shape, obs["state"].shape
    ((64, 64, 3), (59,))
"""

from __future__ import annotations

import atexit
import os
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from skillgym.notices import drop_robotics_notice

ALL_TASKS = (
    "bottom burner",
    "top burner",
    "light switch",
    "slide cabinet",
    "hinge cabinet",
    "microwave",
    "kettle",
)
# The SPiRL / EXTRACT evaluation order.
DEFAULT_TASKS = ("microwave", "kettle", "bottom burner", "light switch")
# Named orders for comparing skill libraries: the default one, and held-out orders that start
# elsewhere and use the two cabinets, towards which no bundled recording is shaped.
TASK_SUITE: dict[str, tuple[str, ...]] = {
    "default": DEFAULT_TASKS,
    "kettle-cabinets": ("kettle", "light switch", "slide cabinet", "hinge cabinet"),
    "burners-cabinets": ("bottom burner", "top burner", "slide cabinet", "hinge cabinet"),
    "switch-first": ("light switch", "slide cabinet", "microwave", "top burner"),
}
HELD_OUT_TASKS = tuple(name for name in TASK_SUITE if name != "default")
STATE_DIM = 59
ACTION_DIM = 9
NQ, NV = 30, 29
# gymnasium-robotics' completion threshold on the distance to the task's goal joint values.
BONUS_THRESH = 0.3
# D4RL's kitchen camera.
CAMERA = dict(distance=2.2, lookat=(-0.2, 0.5, 2.0), azimuth=70.0, elevation=-35.0)


def task_order(name: str) -> tuple[str, ...]:
    """The subtasks of a task: a name from ``TASK_SUITE`` or subtasks joined by ``+``.

    Example:
        >>> task_order("kettle-cabinets")
        ('kettle', 'light switch', 'slide cabinet', 'hinge cabinet')
        >>> task_order("kettle+microwave")
        ('kettle', 'microwave')
    """
    if name in TASK_SUITE:
        return TASK_SUITE[name]
    tasks = tuple(part.strip() for part in name.split("+"))
    unknown = [t for t in tasks if t not in ALL_TASKS]
    if "+" not in name and unknown:
        raise ValueError(f"unknown task {name!r}: name one of {sorted(TASK_SUITE)} or join subtasks with '+' "
                         f"(e.g. 'kettle+microwave'); subtasks: {', '.join(ALL_TASKS)}")
    if unknown:
        raise ValueError(f"task {name!r}: {', '.join(map(repr, unknown))} is no subtask; join subtasks from "
                         f"{', '.join(ALL_TASKS)} with '+'")
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"task {name!r} must list distinct subtasks from {', '.join(ALL_TASKS)} joined by '+'")
    return tasks


def task_name(name: str) -> str:
    """The one spelling of a task: its ``TASK_SUITE`` name if it has one, else its subtasks joined by ``+``.

    Example:
        >>> task_name(" kettle + microwave")
        'kettle+microwave'
        >>> task_name("microwave+kettle+bottom burner+light switch")
        'default'
    """
    order = task_order(name)
    return next((suite_name for suite_name, tasks in TASK_SUITE.items() if tasks == order), "+".join(order))


def _make_franka_kitchen(robot_noise_ratio: float, object_noise_ratio: float):
    drop_robotics_notice()
    import gymnasium_robotics  # noqa: F401  (imported for its side effect: MuJoCo assets)
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import KitchenEnv

    # All 7 tasks are tracked (nothing is removed), we judge order and completion ourselves.
    return KitchenEnv(
        tasks_to_complete=list(ALL_TASKS),
        terminate_on_tasks_completed=False,
        remove_task_when_completed=False,
        object_noise_ratio=object_noise_ratio,
        robot_noise_ratio=robot_noise_ratio,
    )


class SimulationError(RuntimeError):
    """The MuJoCo simulation became unstable (non-finite state)."""


# What a deferred frame is rendered from: MuJoCo's integration state holds everything mj_step
# and mj_forward read (qpos, qvel, act, mocap poses, controls, applied forces, time, ...), so a
# forward pass from it reproduces the live kinematics, and with them the frame, bit for bit.
SNAPSHOT_STATE = mujoco.mjtState.mjSTATE_INTEGRATION


class KitchenRenderer:
    """Offscreen renderer with D4RL's camera and the fast settings (~30 ms instead of ~850 ms).

    The shipped scene casts 4 shadow maps at 4096², uses 8x MSAA and reflections; none of that
    survives a 64x64 or 128x128 image, so it is switched off. ``render`` runs ``mj_forward``
    first so the frame shows the current state, not one substep behind it.

    ``snapshot`` + ``render_snapshot`` render a past state later, identical to what ``render``
    drew then; they run the forward pass on a scratch ``MjData``, so the live simulation is never
    touched.
    """

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, size: int):
        if size < 8 or size > 1024:
            raise ValueError(f"image size must be in [8, 1024], got {size}")
        self.model, self.data, self.size = model, data, size
        model.vis.quality.offsamples = 0
        model.vis.global_.offwidth = max(size, 16)
        model.vis.global_.offheight = max(size, 16)
        self._renderer = mujoco.Renderer(model, size, size)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.camera.distance = CAMERA["distance"]
        self.camera.lookat[:] = CAMERA["lookat"]
        self.camera.azimuth = CAMERA["azimuth"]
        self.camera.elevation = CAMERA["elevation"]
        self._snapshot_size = mujoco.mj_stateSize(model, SNAPSHOT_STATE)
        self._scratch: mujoco.MjData | None = None
        _OPEN_RENDERERS.add(self)
        # Registered after the EGL display's own exit handler (made with the first context), so run before it.
        atexit.unregister(_close_open_renderers)
        atexit.register(_close_open_renderers)

    def render(self) -> np.ndarray:
        """The current state as a ``(size, size, 3)`` uint8 image."""
        return self._draw(self.data)

    def snapshot(self) -> np.ndarray:
        """The live simulator state, enough for ``render_snapshot`` to draw its frame later."""
        state = np.empty(self._snapshot_size)
        mujoco.mj_getState(self.model, self.data, state, SNAPSHOT_STATE)
        return state

    def render_snapshot(self, state: np.ndarray) -> np.ndarray:
        """The frame ``render`` would have drawn when ``state`` was taken by ``snapshot``."""
        if self._scratch is None:
            self._scratch = mujoco.MjData(self.model)
        mujoco.mj_setState(self.model, self._scratch, state, SNAPSHOT_STATE)
        return self._draw(self._scratch)

    def _draw(self, data: mujoco.MjData) -> np.ndarray:
        mujoco.mj_forward(self.model, data)
        self._renderer.update_scene(data, self.camera)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        return self._renderer.render().copy()

    def close(self) -> None:
        """Free the MuJoCo renderer."""
        self._renderer.close()
        _OPEN_RENDERERS.discard(self)


# Renderers of envs nobody closed: freed while the interpreter can still free an EGL context. Left to
# the garbage collector at exit, each prints an EGLError traceback after the user's script has ended.
_OPEN_RENDERERS: weakref.WeakSet[KitchenRenderer] = weakref.WeakSet()


def _close_open_renderers() -> None:
    for renderer in list(_OPEN_RENDERERS):
        renderer.close()


@dataclass(frozen=True, slots=True)
class _PendingFrame:
    """A frame not rendered yet: the simulator snapshot to render it from."""

    snapshot: np.ndarray


class KitchenTaskEnv(gym.Env):
    """FrankaKitchen-v1 with an ordered task list, +1 per subtask completed in order.

    Args:
        tasks: subtasks to complete, in order (names from ``ALL_TASKS``), or a string for
            :func:`task_order`: a name from ``TASK_SUITE`` (``"kettle-cabinets"``) or subtasks joined by ``+``.
        ordered: if True (SPiRL's evaluation), a subtask scores only when every subtask before it in the
            list is done too, judged on the scene's current state as D4RL's kitchen does. A subtask
            done early scores as soon as those before it are done, if it is still done then (an
            opened microwave stays open): on ``("kettle", "microwave")``, microwave then kettle
            scores 2 at the kettle.
        max_episode_steps: time limit; reaching it is truncation, never termination.
        pixels: add rendered frames to the observation (``Dict(state, pixels)``).
        image_size: side of the square frames (64 or 128 in the paper).
        frame_stack: number of stacked frames; pixels have shape ``(stack, H, W, 3)`` if > 1.
        robot_noise_ratio / object_noise_ratio: gymnasium-robotics' observation noise.

    The episode terminates when every subtask is done. ``info["completed_tasks"]`` lists the
    subtasks completed so far (a fresh list each step). ``step`` before the first ``reset`` raises;
    stepping on after the end keeps simulating (the scripted recorder follows through past the last
    subtask); :class:`~skillgym.envs.skill_space.SkillSpaceEnv` refuses it. A simulation that turns
    non-finite raises :class:`SimulationError`; call ``reset``.

    Pixels on demand: ``step`` renders its frame at once. ``step_without_pixels`` steps exactly
    the same way but returns the observation without ``"pixels"`` and keeps a snapshot of the
    simulator instead of a frame; ``current_observation`` renders the snapshots still in the frame
    stack when the pixels are asked for. The frames are bit-identical either way and the
    simulation is the same, so a caller that reads the pixels of only some steps renders only the
    frames those contain (:class:`~skillgym.envs.skill_space.SkillSpaceEnv` reads them at a
    skill's end: ``frame_stack`` frames instead of one per low-level step).

    Example:
        >>> env = KitchenTaskEnv(pixels=True, image_size=64, frame_stack=4)
        >>> _ = env.reset(seed=0)
        >>> for _ in range(10):
        ...     obs, reward, terminated, truncated, info = env.step_without_pixels(np.zeros(9, np.float32))
        >>> sorted(obs)
        ['state']
        >>> env.current_observation()["pixels"].shape  # renders the last 4 steps' frames
        (4, 64, 64, 3)
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 12}

    def __init__(
        self,
        tasks: str | Sequence[str] = DEFAULT_TASKS,
        ordered: bool = True,
        max_episode_steps: int = 280,
        pixels: bool = False,
        image_size: int = 64,
        frame_stack: int = 1,
        robot_noise_ratio: float = 0.01,
        object_noise_ratio: float = 0.0005,
        render_mode: str | None = None,
    ):
        self._started, self._next_tasks = False, None
        self.set_tasks(tasks)
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        if frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
        self.ordered = ordered
        self.max_episode_steps = max_episode_steps
        self.pixels, self.image_size, self.frame_stack = pixels, image_size, frame_stack
        self.render_mode = render_mode
        self.kitchen = _make_franka_kitchen(robot_noise_ratio, object_noise_ratio)
        self.model, self.data = self.kitchen.model, self.kitchen.data
        self._renderer: KitchenRenderer | None = None
        if pixels or render_mode == "rgb_array":
            self._renderer = KitchenRenderer(self.model, self.data, image_size)

        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        state_space = spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float64)
        if pixels:
            shape = (image_size, image_size, 3)
            if frame_stack > 1:
                shape = (frame_stack, *shape)
            self.observation_space = spaces.Dict(
                state=state_space, pixels=spaces.Box(0, 255, shape, np.uint8)
            )
        else:
            self.observation_space = state_space
        self._frames: deque[np.ndarray | _PendingFrame] = deque(maxlen=frame_stack)
        self._state: np.ndarray | None = None
        self._completed: list[str] = []
        self._steps = 0

    def set_tasks(self, tasks: str | Sequence[str]) -> None:
        """Change the subtask list; takes effect at the next ``reset`` (at once before the first). A string
        is a task's name for :func:`task_order`; a set is refused, as it has no order."""
        if isinstance(tasks, (set, frozenset)):
            raise ValueError(f"tasks must be in order: a list or tuple of subtask names, got the set {tasks}")
        if isinstance(tasks, str):
            try:
                tasks = task_order(tasks)
            except ValueError as e:
                raise ValueError(f"tasks={tasks!r}: {e}; or pass a list of subtask names, in order") from None
        tasks = tuple(tasks)
        if not tasks or len(set(tasks)) != len(tasks) or any(t not in ALL_TASKS for t in tasks):
            raise ValueError(f"tasks must be distinct names from {ALL_TASKS}, got {list(tasks)}")
        if self._started:  # the running episode keeps the tasks its rewards counted
            self._next_tasks = tasks
        else:
            self.tasks = tasks

    # -- state access used by demonstrations, re-rendering and tests -------------------------
    def get_sim_state(self) -> np.ndarray:
        """Exact simulator state ``qpos (30) ‖ qvel (29)``."""
        return np.concatenate([self.data.qpos, self.data.qvel]).copy()

    def set_sim_state(self, sim_state: np.ndarray) -> None:
        """Set ``qpos ‖ qvel``; a state of the wrong shape or with NaN/inf raises ``ValueError``."""
        sim_state = np.asarray(sim_state, dtype=np.float64)
        if sim_state.shape != (NQ + NV,):
            raise ValueError(f"sim state must have shape ({NQ + NV},), got {sim_state.shape}")
        if not np.all(np.isfinite(sim_state)):
            raise ValueError("sim state holds NaN or infinite values; MuJoCo cannot simulate it")
        self.data.qpos[:] = sim_state[:NQ]
        self.data.qvel[:] = sim_state[NQ:]
        mujoco.mj_forward(self.model, self.data)
        self.kitchen.robot_env._get_obs()  # refreshes the robot's cached joint positions

    def render_frame(self) -> np.ndarray:
        """The current frame, exactly as the pixel observation renders it."""
        return self._get_renderer().render()

    def _get_renderer(self) -> KitchenRenderer:
        if self._renderer is None:
            self._renderer = KitchenRenderer(self.model, self.data, self.image_size)
        return self._renderer

    def task_distance(self, task: str) -> float:
        """Distance of the subtask's object from its goal (joint units); done below ``BONUS_THRESH``."""
        from gymnasium_robotics.envs.franka_kitchen.kitchen_env import (
            OBS_ELEMENT_GOALS,
            OBS_ELEMENT_INDICES,
        )

        return float(np.linalg.norm(self.data.qpos[OBS_ELEMENT_INDICES[task]] - OBS_ELEMENT_GOALS[task]))

    def task_done(self, task: str) -> bool:
        """Whether the subtask's object is within ``BONUS_THRESH`` of its goal."""
        return self.task_distance(task) < BONUS_THRESH

    # -- gymnasium API ------------------------------------------------------------------------
    def current_observation(self) -> np.ndarray | dict[str, np.ndarray]:
        """The observation of the last ``reset`` or step, as ``step`` returns it.

        Renders the frames of the stack that ``step_without_pixels`` left as snapshots (each
        once: they stay in the stack rendered).
        """
        if self._state is None:
            raise RuntimeError("call reset() before current_observation()")
        if not self.pixels:
            return self._state
        for i, frame in enumerate(self._frames):
            if isinstance(frame, _PendingFrame):
                self._frames[i] = self._get_renderer().render_snapshot(frame.snapshot)
        pixels = np.stack(self._frames) if self.frame_stack > 1 else self._frames[-1]
        return {"state": self._state, "pixels": pixels}

    def _count_new_completions(self) -> int:
        remaining = [t for t in self.tasks if t not in self._completed]
        new = 0
        for task in remaining:
            if self.task_done(task):
                self._completed.append(task)
                new += 1
            elif self.ordered:
                break
        return new

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, _ = self.kitchen.reset(seed=seed)
        if self._next_tasks is not None:
            self.tasks, self._next_tasks = self._next_tasks, None
        self._completed, self._steps = [], 0
        self._started = True
        self._frames.clear()
        self._state = obs["observation"]
        if self.pixels:  # the stack starts full of the first frame
            self._frames.extend([self.render_frame()] * self.frame_stack)
        return self.current_observation(), self._info()

    def step(self, action):
        """The reward is the number of subtasks newly completed (in order if ``ordered``)."""
        reward, terminated, truncated, info = self._advance(action)
        if self.pixels:
            self._frames.append(self.render_frame())
        return self.current_observation(), reward, terminated, truncated, info

    def step_without_pixels(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """``step`` that defers rendering: the observation lacks ``"pixels"``.

        The simulation, reward and info are those of ``step``; the frame is rendered by a later
        ``current_observation`` if it is still in the stack. Without ``pixels`` this is ``step``.
        """
        reward, terminated, truncated, info = self._advance(action)
        if not self.pixels:
            return self._state, reward, terminated, truncated, info
        self._frames.append(_PendingFrame(self._get_renderer().snapshot()))
        return {"state": self._state}, reward, terminated, truncated, info

    def _advance(self, action) -> tuple[float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
            raise ValueError(
                f"kitchen action must be a finite array of shape ({ACTION_DIM},), "
                f"got shape {action.shape}"
            )
        if not self._started:
            raise RuntimeError("call reset() before step()")
        obs, _, _, _, _ = self.kitchen.step(np.clip(action, -1.0, 1.0))
        self._steps += 1
        if not np.all(np.isfinite(obs["observation"])) or not np.all(np.isfinite(self.data.qpos)):
            # MuJoCo diverged (it resets the data after a warning and goes on): end the episode
            # instead of handing the agent NaNs or a silently reset scene.
            self._started = False
            raise SimulationError("the kitchen simulation became unstable (non-finite state); call reset()")
        self._state = obs["observation"]
        reward = float(self._count_new_completions())
        terminated = len(self._completed) == len(self.tasks)
        truncated = self._steps >= self.max_episode_steps and not terminated
        return reward, terminated, truncated, self._info()

    def _info(self) -> dict[str, Any]:
        return {"completed_tasks": list(self._completed), "num_completed": len(self._completed)}

    def render(self):
        """The current frame if ``render_mode`` is ``"rgb_array"``, else None."""
        if self.render_mode == "rgb_array":
            return self.render_frame()
        return None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        super().close()
