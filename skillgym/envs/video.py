"""RecordSkillVideo: gymnasium's RecordVideo, but with every low-level frame of every skill."""

from __future__ import annotations

from gymnasium.wrappers import RecordVideo


class RecordSkillVideo(RecordVideo):
    """Record videos of a :class:`SkillSpaceEnv` showing all the frames each skill executed.

    Stock ``RecordVideo`` stores one frame per ``step``: one per skill decision here, which
    hides what the skills do. This subclass asks the skill env for the frames of the last skill.
    The skill env must be created with ``record_frames=True`` and a low-level
    ``render_mode="rgb_array"``.

    Example:
        >>> env = gym.make("SkillKitchen-v0", record_frames=True, render_mode="rgb_array")
        >>> env = RecordSkillVideo(env, "videos/")
    """

    def _capture_frame(self) -> None:
        frames = self.env.get_wrapper_attr("last_skill_frames")
        if frames:
            self.recorded_frames.extend(frames)
        else:  # right after reset: the first frame
            super()._capture_frame()
