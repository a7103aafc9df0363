"""Scripted pick-and-place in LIBERO: pick the object a task names and put it on (or in) its target.

The controller reads the simulator (object positions) and the robot's proprioception, and drives
robosuite's OSC_POSE controller with the same 7-d actions a teleoperator's device would send:
end-effector translation and rotation deltas and a gripper command (-1 open, +1 closed). It grasps
a bowl by its rim, on the side that faces the robot, with the gripper turned so that the fingers
close across the rim wall (a grasp that closes on nothing is tried again at another point of the
rim, three points in all), lifts it above everything on the table, carries it over the target,
lowers it and lets go. Per-episode randomness (the rim point, heights, action noise) comes from the
episode's generator only.

It serves the ``libero_spatial`` suite, whose ten tasks all pick a black bowl and place it on the
plate (``(On akita_black_bowl_i plate_1)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

# Phases of a pick-and-place, recorded per step as the demonstration's subtask labels.
PHASES = ("reach", "descend", "grasp", "lift", "carry", "lower", "release", "retreat")
# Bowl geometry (LIBERO's akita_black_bowl): rim wall radius and the height of its middle above the body origin.
RIM_RADIUS = 0.047
RIM_GRASP_HEIGHT = 0.03
# OSC_POSE: an action of 1 asks for 5 cm of translation or 0.5 rad of rotation in one step.
POSITION_SCALE, ROTATION_SCALE = 0.05, 0.5
CARRY_CLEARANCE = 0.18  # height of the carried bowl's origin above the higher of bowl and target
PLACE_HEIGHT = 0.035  # the bowl's origin above the target's origin when it is let go
MAX_SPEED = 0.6  # largest translation action: 3 cm per step
# The bowl's upper rim wall is made of boxes this tall and taller (its lower wall's are shorter).
RIM_WALL_HALF_HEIGHT = 0.015
# Fingers closed on the rim wall (2.6 mm thick) stay at least this far apart; closed on nothing, about 1 mm.
HOLDING_GAP = 0.0025
# Rim points tried when a grasp closes on nothing.
MAX_GRASPS = 3
# Distance of the outer finger from the bowl's centre when the half-open hand straddles the rim.
OUTER_FINGER = RIM_RADIUS + 0.024
COLLISION_GROUP = np.array([1, 0, 0, 0, 0, 0], np.uint8)  # robosuite puts collision geoms in group 0
# A hand that moved less than STALL_MOTION in STALL_STEPS steps within BLOCKED_DISTANCE of its goal is held back.
STALL_STEPS, STALL_MOTION, BLOCKED_DISTANCE = 6, 0.003, 0.04


@dataclass
class Target:
    """What the task asks: move ``obj`` onto ``target`` (LIBERO object names)."""

    obj: str
    target: str


def pick_and_place_goal(predicates: list[list[str]]) -> Target:
    """The object and target of a one-predicate ``(On obj target)`` goal; other goals are not scripted."""
    if len(predicates) != 1 or predicates[0][0].lower() != "on" or len(predicates[0]) != 3:
        raise ValueError(f"the scripted controller places one object on another; this goal is {predicates}")
    return Target(predicates[0][1], predicates[0][2])


def _axisangle_to_matrix(v: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def _matrix_to_axisangle(r: np.ndarray) -> np.ndarray:
    cos = np.clip((np.trace(r) - 1) / 2, -1.0, 1.0)
    angle = float(np.arccos(cos))
    if angle < 1e-9:
        return np.zeros(3)
    if np.pi - angle < 1e-6:  # 180 degrees: the axis is the column of r + I with the largest norm
        m = r + np.eye(3)
        axis = m[:, int(np.argmax(np.linalg.norm(m, axis=0)))]
        return axis / np.linalg.norm(axis) * angle
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / (2 * np.sin(angle))
    return axis * angle


def _yaw(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class ScriptedLiberoController:
    """Pick-and-place for one episode of a :class:`~skillgym.tasks.libero.LiberoTaskEnv` (call after ``reset``).

    ``act(obs)`` returns the executed action (with noise) and keeps the noise-free one in
    ``clean_action``; ``phase`` names what the controller is doing; ``finished`` turns True after
    the retreat, and ``gave_up`` if a phase overran its step budget (the episode is then a failure).
    """

    def __init__(self, env, rng: np.random.Generator, action_noise: float = 0.05):
        self.env, self.rng, self.action_noise = env, rng, action_noise
        self.goal = pick_and_place_goal(env.goal_predicates())
        self.clean_action = np.zeros(7)
        self.phase = PHASES[0]
        self.finished = self.gave_up = False
        # The rim point facing the robot, varied by up to +-25 degrees, and the gripper turned to close across it.
        robosuite_env = env.robosuite_env
        base = robosuite_env.robots[0].base_pos
        bowl = self._body(self.goal.obj)
        toward_robot = np.arctan2(base[1] - bowl[1], base[0] - bowl[0]) + rng.uniform(-np.radians(20), np.radians(20))
        # Rim points whose outer finger has room to go down (a drawer's or a neighbour's wall may stand
        # there), nearest the robot's side first.
        candidates = [toward_robot + np.radians(step) for step in (0, 30, -30, 60, -60, 90, -90, 120, -120, 180)]
        clear = [d for d in candidates if self._room_for_finger(bowl, d)]
        self._directions = (clear or candidates)[:MAX_GRASPS]
        self._lift = CARRY_CLEARANCE + rng.uniform(-0.02, 0.02)
        self._program = self._run()
        self._obs: dict[str, np.ndarray] | None = None

    def _room_for_finger(self, bowl: np.ndarray, direction: float) -> bool:
        """Whether nothing but the bowl stands where the outer finger goes down, outside the rim at ``direction``."""
        import mujoco

        robosuite_env = self.env.robosuite_env
        model, data = robosuite_env.sim.model._model, robosuite_env.sim.data._data
        radial = np.array([np.cos(direction), np.sin(direction), 0.0])
        tangent = np.array([-radial[1], radial[0], 0.0])
        lowest = bowl[2] + RIM_GRASP_HEIGHT - 0.015
        geom = np.zeros(1, np.int32)
        for r, t in ((OUTER_FINGER, 0.0), (OUTER_FINGER, 0.012), (OUTER_FINGER, -0.012), (OUTER_FINGER + 0.012, 0.0)):
            start = bowl + r * radial + t * tangent + np.array([0.0, 0.0, 0.12])
            distance = mujoco.mj_ray(model, data, start, np.array([0.0, 0.0, -1.0]), COLLISION_GROUP, 1,
                                     robosuite_env.obj_body_id[self.goal.obj], geom)
            if distance >= 0 and start[2] - distance > lowest:
                return False
        return True

    def _rim(self, direction: float) -> np.ndarray:
        """Where the fingers close on the rim at ``direction``: the middle of the rim wall piece there, as the
        bowl is now (a bowl resting on another object tilts and sinks when it is touched)."""
        robosuite_env = self.env.robosuite_env
        model, data = robosuite_env.sim.model._model, robosuite_env.sim.data._data
        body = robosuite_env.obj_body_id[self.goal.obj]
        bowl = data.xpos[body]
        wall = [g for g in range(model.ngeom) if model.geom_bodyid[g] == body and model.geom_contype[g]
                and model.geom_size[g][2] > RIM_WALL_HALF_HEIGHT]
        if not wall:
            return bowl + RIM_RADIUS * np.array([np.cos(direction), np.sin(direction), 0.0]) + [0, 0, RIM_GRASP_HEIGHT]
        offsets = data.geom_xpos[wall, :2] - bowl[:2]
        nearest = int(np.argmax(offsets @ np.array([np.cos(direction), np.sin(direction)])))
        return data.geom_xpos[wall[nearest]].copy()

    def _body(self, name: str) -> np.ndarray:
        robosuite_env = self.env.robosuite_env
        return robosuite_env.sim.data.body_xpos[robosuite_env.obj_body_id[name]].copy()

    # -- one step ------------------------------------------------------------------------------
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The next action (noise added to the arm) for the observation ``obs``."""
        self._obs = obs
        if not self.finished:
            try:
                self.phase, self.clean_action = next(self._program)
            except StopIteration:
                self.finished = True
                self.clean_action = np.zeros(7)
                self.clean_action[6] = -1.0
        executed = self.clean_action.copy()
        if self.action_noise > 0:
            executed[:6] += self.rng.normal(0.0, self.action_noise, 6)
        return np.clip(executed, -1.0, 1.0).astype(np.float32)

    def _ee(self) -> tuple[np.ndarray, np.ndarray]:
        state = self._obs["state"]
        return state[7:10].copy(), _axisangle_to_matrix(state[10:13])

    def _toward(self, position: np.ndarray, rotation: np.ndarray, grip: float, gain: float = 1.0,
                speed: float = MAX_SPEED) -> tuple[np.ndarray, float]:
        """The action that moves the hand toward ``position``/``rotation``, and the remaining distance."""
        ee, current = self._ee()
        error = position - ee
        move = np.clip(gain * error / POSITION_SCALE, -speed, speed)
        turn = np.clip(_matrix_to_axisangle(rotation @ current.T) / ROTATION_SCALE, -1.0, 1.0)
        return np.concatenate([move, turn, [grip]]), float(np.linalg.norm(error))

    # -- the program ---------------------------------------------------------------------------
    def _go(self, phase: str, position, rotation, grip: float, tolerance: float, budget: int,
            speed: float = MAX_SPEED, blocked_ok: bool = False) -> Iterator[tuple[str, np.ndarray]]:
        """Move until within ``tolerance``; with ``blocked_ok`` also stop where something holds the hand
        back close to the goal (the bowl already resting on its target, fingers on a rim's lip)."""
        recent: list[np.ndarray] = []
        for _ in range(budget):
            goal = position() if callable(position) else position
            action, distance = self._toward(np.asarray(goal), rotation, grip, speed=speed)
            if distance < tolerance:
                return
            recent = (recent + [self._ee()[0]])[-STALL_STEPS:]
            if blocked_ok and len(recent) == STALL_STEPS and distance < BLOCKED_DISTANCE \
                    and np.ptp(np.asarray(recent), axis=0).max() < STALL_MOTION:
                return
            yield phase, action
        self.gave_up = True

    def _hold(self, phase: str, grip: float, steps: int) -> Iterator[tuple[str, np.ndarray]]:
        ee, rotation = self._ee()
        for _ in range(steps):
            action, _ = self._toward(ee, rotation, grip)
            yield phase, action

    def _grasp_rotation(self, start_rotation: np.ndarray, direction: float) -> np.ndarray:
        """The hand turned about the vertical so that its fingers (its y axis) close along ``direction``."""
        finger_axis = start_rotation[:, 1]
        turn = direction - np.arctan2(finger_axis[1], finger_axis[0])
        turn = (turn + np.pi / 2) % np.pi - np.pi / 2  # the gripper is symmetric: turn by at most 90 degrees
        return _yaw(turn) @ start_rotation

    def _holding(self) -> bool:
        state = self._obs["state"]
        return float(state[13] - state[14]) > HOLDING_GAP

    def _run(self) -> Iterator[tuple[str, np.ndarray]]:
        _, start_rotation = self._ee()
        bowl = self._body(self.goal.obj)
        for attempt, direction in enumerate(self._directions):
            grasp_rotation = self._grasp_rotation(start_rotation, direction)
            # Gripper command 0 holds the fingers half open (4.8 cm): the inner one goes inside the rim
            # without reaching the bowl's floor, the outer one stays clear of the bowl's neighbours.
            yield from self._go("reach", lambda d=direction: self._rim(d) + [0, 0, 0.12], grasp_rotation, 0.0,
                                0.015, 80)
            if not self.gave_up:
                yield from self._go("descend", lambda d=direction: self._rim(d), grasp_rotation, 0.0, 0.008, 50,
                                    speed=0.4, blocked_ok=True)
            if self.gave_up:
                return
            yield from self._hold("grasp", 1.0, 12)
            if self._holding():
                break
            # Closed on nothing: open, back up and try another point of the rim.
            yield from self._hold("grasp", -1.0, 8)
            ee, _ = self._ee()
            yield from self._go("reach", ee + [0, 0, 0.1], grasp_rotation, -1.0, 0.02, 30)
            if self.gave_up or attempt == len(self._directions) - 1:
                self.gave_up = True
                return
            # Back to half open: robosuite moves the Panda's gripper command by 0.25 per step, -1 -> 0 in 4.
            yield from self._hold("reach", 1.0, 4)
        ee, _ = self._ee()
        target = self._body(self.goal.target)
        carry_z = max(bowl[2], target[2]) + self._lift + (ee[2] - bowl[2])
        yield from self._go("lift", np.array([ee[0], ee[1], carry_z]), grasp_rotation, 1.0, 0.02, 60)
        if self.gave_up:
            return
        # The hand keeps its offset from the bowl's centre: put the centre over the target's.
        over = target + self._ee()[0] - self._body(self.goal.obj)
        yield from self._go("carry", np.array([over[0], over[1], carry_z]), grasp_rotation, 1.0, 0.015, 100)
        if not self.gave_up:  # down at full speed to 5 cm above the place height, the rest slowly
            yield from self._go("lower", over + [0, 0, PLACE_HEIGHT + 0.05], grasp_rotation, 1.0, 0.015, 60)
        if not self.gave_up:
            yield from self._go("lower", over + [0, 0, PLACE_HEIGHT], grasp_rotation, 1.0, 0.01, 40, speed=0.4,
                                blocked_ok=True)
        if self.gave_up:
            return
        yield from self._hold("release", -1.0, 10)
        ee, _ = self._ee()
        yield from self._go("retreat", ee + [0, 0, 0.08], grasp_rotation, -1.0, 0.02, 30)
