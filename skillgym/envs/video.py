"""RecordSkillVideo: gymnasium's RecordVideo, but with every low-level frame of every skill."""

from __future__ import annotations

from gymnasium.wrappers import RecordVideo


class RecordSkillVideo(RecordVideo):
    """Record videos of a :class:`SkillSpaceEnv` showing all the frames each skill executed.

    Stock ``RecordVideo`` stores one frame per ``step``: one per skill decision here, which
    hides what the skills do. This subclass asks the skill env for the frames of the last skill.
    The skill env must be created with ``record_frames=True`` and a low-level
    ``render_mode="rgb_array"``.

    Example (``RecordVideo`` needs MoviePy, ``pip install "gymnasium[other]"``):
        >>> import pytest; _ = pytest.importorskip("moviepy")
        >>> import tempfile
        >>> import numpy as np
        >>> from skillgym.envs import SkillSpaceEnv
        >>> from skillgym.tasks.kitchen import KitchenTaskEnv
        >>> low = KitchenTaskEnv(render_mode="rgb_array", image_size=64)
        >>> env = SkillSpaceEnv(low, "skillgym/assets/kitchen-state", record_frames=True)
        >>> env = RecordSkillVideo(env, tempfile.mkdtemp(), episode_trigger=lambda episode: episode % 10 == 0)
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step({"skill": 3, "arg": np.zeros(5, np.float32)})
        >>> len(env.recorded_frames) == 1 + info["skill_steps"]   # the reset frame, then every skill step
        True

    the next ``reset()`` or ``close()`` after a recorded episode writes its mp4.
    """

    def _capture_frame(self) -> None:
        frames = self.env.get_wrapper_attr("last_skill_frames")
        if frames:
            self.recorded_frames.extend(frames)
        else:  # right after reset: the first frame
            super()._capture_frame()
