"""Kinematics helpers for the scripted kitchen controller: forward kinematics and
damped-least-squares IK for the Franka's ``end_effector`` site on a scratch ``MjData``.

The scratch data never touches the simulation: IK iterates on a private copy of the robot
joints, so planning a pose costs no physics and cannot disturb the episode.
"""

from __future__ import annotations

import copy

import mujoco
import numpy as np

N_ARM = 7
# Position-servo gains of the arm actuators (kitchen XML): used for the gravity feed-forward.
ARM_KP = np.array([870.0, 870.0, 870.0, 870.0, 120.0, 120.0, 120.0])
# The env turns an action a into the servo target q_obs + 0.16 a (velocity bound 10 rad/s is
# never reached: |2 a| <= 2).
ACTION_TO_TARGET = 0.16
# The reset posture (gymnasium-robotics KitchenEnv.init_qpos); a comfortable null-space anchor.
HOME_Q = np.array([0.1481, -1.7628, 1.8440, -2.4769, 0.2603, 0.7125, 1.5952])


def rot_error(r_des: np.ndarray, r_cur: np.ndarray) -> np.ndarray:
    """Axis-angle vector (world frame) that rotates ``r_cur`` onto ``r_des``."""
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, (r_des @ r_cur.T).ravel())
    if quat[0] < 0:  # shortest way round
        quat = -quat
    vel = np.empty(3)
    mujoco.mju_quat2Vel(vel, quat, 1.0)
    return vel


def rot_about(axis: str, angle: float) -> np.ndarray:
    """Rotation matrix about a world axis ``'x'``, ``'y'`` or ``'z'``."""
    c, s = np.cos(angle), np.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


class ArmKinematics:
    """FK / IK of the 7 arm joints for the ``end_effector`` site of a kitchen model."""

    def __init__(
        self,
        model: mujoco.MjModel,
        site: str = "end_effector",
        target_bounds: np.ndarray | None = None,
    ):
        self.model = model
        self.scratch = mujoco.MjData(model)
        self.site_id = model.site(site).id
        lo, hi = model.jnt_range[:N_ARM, 0].copy(), model.jnt_range[:N_ARM, 1].copy()
        if target_bounds is not None:
            # The env also clips servo targets (joint 6 to [0, 3.8], tighter than the model's
            # [-1.66, 2.11]): a posture outside these bounds cannot be commanded.
            lo = np.maximum(lo, target_bounds[:N_ARM, 0])
            hi = np.minimum(hi, target_bounds[:N_ARM, 1])
        # Stay a little inside the limits: the servo clips targets at the limits and the
        # prototype lost time sliding along joint 2's and joint 6's stops.
        self.lo, self.hi = lo + 0.02, hi - 0.02
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Site position (3,) and rotation matrix (3, 3) for arm joints ``q``."""
        self.scratch.qpos[:N_ARM] = q
        mujoco.mj_kinematics(self.model, self.scratch)
        mujoco.mj_comPos(self.model, self.scratch)  # cdof, needed by mj_jacSite
        return (
            self.scratch.site_xpos[self.site_id].copy(),
            self.scratch.site_xmat[self.site_id].reshape(3, 3).copy(),
        )

    def solve(
        self,
        q0: np.ndarray,
        pos: np.ndarray,
        rot: np.ndarray | None,
        iters: int = 60,
        damping: float = 0.03,
        rot_weights: np.ndarray | None = None,
        null_q: np.ndarray | None = None,
        null_gain: float = 0.05,
        tol: float = 1e-3,
    ) -> tuple[np.ndarray, float]:
        """Damped-least-squares IK from ``q0``; returns (q, final position error in m).

        ``rot=None`` solves position only. ``rot_weights`` weighs the orientation error about
        the site's own x, y, z axes (default 0.5 each): a small weight about an axis leaves that
        rotation nearly free, e.g. the yaw about a vertical handle. Joints are clamped inside
        their limits after every iteration; a null-space pull towards ``null_q`` keeps the
        posture near a known good one without disturbing the pose.
        """
        q = np.array(q0, dtype=np.float64)
        null_q = np.clip(HOME_Q if null_q is None else null_q, self.lo, self.hi)
        weights = np.full(3, 0.5) if rot_weights is None else np.asarray(rot_weights)
        err_p = np.inf
        for _ in range(iters):
            p, r = self.fk(q)
            err_p_vec = pos - p
            err_p = float(np.linalg.norm(err_p_vec))
            mujoco.mj_jacSite(self.model, self.scratch, self._jacp, self._jacr, self.site_id)
            if rot is None:
                jac, err = self._jacp[:, :N_ARM], err_p_vec
                done = err_p < tol
            else:
                # Orientation error and Jacobian in the site frame, weighted per site axis.
                err_r = weights * (r.T @ rot_error(rot, r))
                jac_r = weights[:, None] * (r.T @ self._jacr[:, :N_ARM])
                jac = np.vstack([self._jacp[:, :N_ARM], jac_r])
                err = np.concatenate([err_p_vec, err_r])
                done = err_p < tol and np.linalg.norm(err_r) < 0.005
            if done:
                break
            # Limit each iteration's Cartesian step: DLS is only locally accurate.
            norm = np.linalg.norm(err)
            if norm > 0.1:
                err = err * (0.1 / norm)
            # Joints sitting at a limit and pushed outwards are locked (their column zeroed)
            # and the step re-solved, so the other joints take over their share.
            free = np.ones(N_ARM, dtype=bool)
            for _attempt in range(3):
                jac_f = jac * free
                jjt = jac_f @ jac_f.T + damping**2 * np.eye(jac.shape[0])
                dq = jac_f.T @ np.linalg.solve(jjt, err)
                if null_gain > 0:
                    # Exact projector (undamped pseudo-inverse): the pull never fights the pose.
                    proj = np.eye(N_ARM) - np.linalg.pinv(jac_f, rcond=1e-3) @ jac_f
                    dq += (proj @ (null_gain * (null_q - q))) * free
                blocked = ((q + dq < self.lo) | (q + dq > self.hi)) & free
                if not blocked.any():
                    break
                free &= ~blocked
            q = np.clip(q + dq, self.lo, self.hi)
        return q, err_p


class PathChecker:
    """Collision check of straight joint-space arm paths against the rest of the kitchen.

    Works on a private copy of the model whose robot geoms carry a safety ``margin`` (m), so a
    path that passes closer than that to a door, a knob or the kettle counts as colliding.
    Contacts between the robot and the scene that already exist at the start of the path (a
    finger still touching a handle it let go of) are ignored.
    """

    def __init__(self, model: mujoco.MjModel, margin: float = 0.02, resolution: float = 0.05):
        self.model = copy.deepcopy(model)
        self.data = mujoco.MjData(self.model)
        self.resolution = resolution
        root = model.jnt_bodyid[0]
        robot_body = np.zeros(model.nbody, dtype=bool)
        for b in range(model.nbody):
            a = b
            while a > 0 and a != root:
                a = model.body_parentid[a]
            robot_body[b] = a == root
        self.robot_geom = robot_body[model.geom_bodyid]
        self.model.geom_margin[self.robot_geom] = margin

    def _pairs(self, q: np.ndarray) -> set[tuple[int, int]]:
        self.data.qpos[:N_ARM] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_collision(self.model, self.data)
        pairs = set()
        for c in self.data.contact[: self.data.ncon]:
            if self.robot_geom[c.geom1] != self.robot_geom[c.geom2]:
                pairs.add((int(c.geom1), int(c.geom2)))
        return pairs

    def collisions(self, qpos: np.ndarray, path: list[np.ndarray]) -> int:
        """Number of checked points along the piecewise-linear arm ``path`` that collide.

        ``qpos`` is the full simulator position (objects where they are now); ``path`` starts
        at the current arm joints.
        """
        self.data.qpos[:] = qpos
        ignore = self._pairs(path[0])
        hits = 0
        for a, b in zip(path[:-1], path[1:], strict=True):
            n = max(1, int(np.ceil(np.max(np.abs(b - a)) / self.resolution)))
            for k in range(1, n + 1):
                if self._pairs(a + (b - a) * (k / n)) - ignore:
                    hits += 1
        return hits
