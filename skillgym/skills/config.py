"""LibraryConfig: everything needed to rebuild a skill library's networks, JSON-serialisable.

It lives in its own module so that both ``model.py`` (which builds networks from it) and
``library.py`` (which saves and loads it) can import it without importing each other.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

FORMAT_VERSION = 1
OBS_KINDS = ("state", "pixels")
DECODER_KINDS = ("open_loop", "closed_loop")
DECODER_OBS = ("prior", "state")
# Upper bounds on the sizes a config may ask for (others: 2**16), so a corrupt or hostile config fails
# with a message instead of allocating gigabytes of weights.
MAX_SIZES = {"hidden_dim": 4096, "prior_hidden_dim": 4096, "lstm_layers": 16, "prior_layers": 32,
             "pixel_feature_dim": 4096, "decoder_obs_dim": 4096, "instruction_dim": 4096,
             "instruction_feature_dim": 4096, "image_size": 1024, "frame_stack": 64,
             "num_skills": 4096, "z_dim": 1024}
# Fields added to format 1 after its first release: a config.json saved before them lacks them, and their
# defaults are what such a library does (the decoder observes the priors' observation, no state skip, no
# instruction). Every other field is in every config.json that SkillLibrary.save wrote.
ADDED_IN_FORMAT_1 = ("decoder_obs", "state_skip", "instruction_dim", "instruction_feature_dim")
# How the pixel observations of the training data were produced; the RL env must render the same.
DEFAULT_FRAME_PREPROCESSING = (
    "the kitchen task env's KitchenRenderer, rendered directly at image_size x image_size, uint8 RGB, "
    "no resize; stack of the last frame_stack frames, oldest first, the first frame repeated at reset"
)


class LibraryError(ValueError):
    """A skill library folder is missing, corrupt, or its config does not match its weights."""


@dataclass
class LibraryConfig:
    """Shapes and provenance of a :class:`~skillgym.skills.library.SkillLibrary`."""

    num_skills: int
    z_dim: int = 5
    max_skill_steps: int = 30
    action_dim: int = 9
    action_low: list[float] | None = None  # None -> [-1] * action_dim
    action_high: list[float] | None = None  # None -> [+1] * action_dim
    obs_kind: str = "state"  # "state" | "pixels"
    state_dim: int = 59
    image_size: int = 64
    frame_stack: int = 4
    frame_preprocessing: str = DEFAULT_FRAME_PREPROCESSING
    decoder: str = "open_loop"  # "open_loop" | "closed_loop"
    # Feed the previous action and progress back into the decoder (teacher-forced in training).
    # Off by default: in the kitchen it gave a low teacher-forced error but free-running skills
    # that drifted off the data (exposure bias); see docs/skills.md.
    autoregressive: bool = False
    # What a closed-loop decoder observes: "prior" = the priors' observation; "state" = the
    # low-level state vector even when the priors (and the agent) see pixels -- a per-step conv
    # would dominate the env's cost, and the low-level env has the state anyway.
    decoder_obs: str = "prior"
    # A closed-loop decoder that sees the state vector may add a linear map of the (standardised)
    # state straight into its action pre-activation. Kitchen actions are servo-target offsets,
    # a = (q_target - q_observed) / 0.16: linear in the observed joints, which an LSTM fed ReLU
    # features reproduces only roughly (see docs/skills.md).
    state_skip: bool = False
    arg_bound: float = 3.0  # |z| bound of the env's Box arg space
    hidden_dim: int = 128  # LSTM width of the encoder q(z|a,d) and the decoder
    lstm_layers: int = 1
    prior_hidden_dim: int = 128
    prior_layers: int = 4
    pixel_feature_dim: int = 128  # output of the conv encoder (pixels only)
    decoder_obs_dim: int = 64  # observation features fed to a closed-loop decoder
    # Size of the language instruction embedding the priors and the decoder take (0: not
    # language-conditioned). Each network projects it linearly to instruction_feature_dim features.
    instruction_dim: int = 0
    instruction_feature_dim: int = 32
    labeler: dict[str, Any] = field(default_factory=dict)
    trained_on: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.action_low is None:
            self.action_low = [-1.0] * self.action_dim
        if self.action_high is None:
            self.action_high = [1.0] * self.action_dim
        try:
            self.action_low = [float(x) for x in self.action_low]
            self.action_high = [float(x) for x in self.action_high]
        except (TypeError, ValueError) as e:
            raise LibraryError(f"invalid LibraryConfig: action_low/high must be lists of numbers ({e})") from e
        self.validate()

    def validate(self) -> None:
        """Raise :class:`LibraryError` listing every field out of range, of the wrong type or inconsistent."""
        errors = []
        for name in ("num_skills", "z_dim", "max_skill_steps", "action_dim", "state_dim", "image_size",
                     "frame_stack", "hidden_dim", "lstm_layers", "prior_hidden_dim", "prior_layers",
                     "pixel_feature_dim", "decoder_obs_dim", "instruction_feature_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                errors.append(f"{name} must be a positive int, got {value!r}")
            elif value > MAX_SIZES.get(name, 2**16):
                errors.append(f"{name} = {value} exceeds {MAX_SIZES.get(name, 2**16)}; not a plausible library")
        if not isinstance(self.instruction_dim, int) or isinstance(self.instruction_dim, bool) \
                or not 0 <= self.instruction_dim <= MAX_SIZES["instruction_dim"]:
            errors.append(f"instruction_dim must be an int in [0, {MAX_SIZES['instruction_dim']}] "
                          f"(0: not language-conditioned), got {self.instruction_dim!r}")
        if self.obs_kind not in OBS_KINDS:
            errors.append(f"obs_kind must be one of {OBS_KINDS}, got {self.obs_kind!r}")
        if self.decoder not in DECODER_KINDS:
            errors.append(f"decoder must be one of {DECODER_KINDS}, got {self.decoder!r}")
        if self.decoder_obs not in DECODER_OBS:
            errors.append(f"decoder_obs must be one of {DECODER_OBS}, got {self.decoder_obs!r}")
        if self.state_skip and not (self.decoder == "closed_loop" and self.decoder_obs_kind == "state"):
            errors.append("state_skip needs a closed-loop decoder that observes the state vector "
                          "(decoder='closed_loop' with obs_kind='state' or decoder_obs='state')")
        if not (isinstance(self.arg_bound, (int, float)) and not isinstance(self.arg_bound, bool)
                and math.isfinite(self.arg_bound) and self.arg_bound > 0):
            errors.append(f"arg_bound must be a finite number > 0, got {self.arg_bound!r}")
        for name in ("labeler", "trained_on", "versions"):
            if not isinstance(getattr(self, name), dict):
                errors.append(f"{name} must be a JSON object, got {type(getattr(self, name)).__name__}")
        for name in ("obs_kind", "decoder", "decoder_obs", "frame_preprocessing"):
            if not isinstance(getattr(self, name), str):
                errors.append(f"{name} must be a string, got {getattr(self, name)!r}")
        if not all(math.isfinite(x) for x in [*self.action_low, *self.action_high]):
            errors.append("action_low/high must be finite numbers (the decoder scales its tanh output to them)")
        elif len(self.action_low) != self.action_dim or len(self.action_high) != self.action_dim:
            errors.append(f"action_low/high must have action_dim={self.action_dim} entries")
        elif any(lo >= hi for lo, hi in zip(self.action_low, self.action_high, strict=True)):
            errors.append("action_low must be < action_high in every dimension")
        if self.obs_kind == "pixels" and isinstance(self.image_size, int) and self.image_size < 16:
            errors.append(f"image_size must be >= 16 for the conv encoder's 4 halvings, got {self.image_size}")
        if errors:
            raise LibraryError("invalid LibraryConfig: " + "; ".join(errors))

    @property
    def language_conditioned(self) -> bool:
        """Whether the priors and the decoder take a language instruction's embedding."""
        return self.instruction_dim > 0

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """What the priors observe: ``(state_dim,)`` or ``(frame_stack, image_size, image_size, 3)``."""
        if self.obs_kind == "state":
            return (self.state_dim,)
        return (self.frame_stack, self.image_size, self.image_size, 3)

    @property
    def decoder_obs_kind(self) -> str:
        """"state" or "pixels": what a closed-loop decoder's observation encoder takes."""
        return "state" if self.decoder_obs == "state" else self.obs_kind

    @property
    def decoder_obs_shape(self) -> tuple[int, ...]:
        """What a closed-loop decoder observes: ``(state_dim,)`` or :attr:`obs_shape`."""
        return (self.state_dim,) if self.decoder_obs_kind == "state" else self.obs_shape

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-serialisable values."""
        return asdict(self)

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON with sorted keys."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> LibraryConfig:
        """A config from :meth:`to_dict`'s output; :class:`LibraryError` on another format version, unknown
        or missing keys, or invalid values.

        Only the fields of :data:`ADDED_IN_FORMAT_1` may be missing (a library saved before they existed);
        any other missing key would silently become a default that need not be the library's.

        Example:
            >>> payload = LibraryConfig(num_skills=8, max_skill_steps=40).to_dict()
            >>> LibraryConfig.from_dict(payload).max_skill_steps
            40
            >>> del payload["max_skill_steps"], payload["z_dim"]
            >>> LibraryConfig.from_dict(payload)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            skillgym.skills.config.LibraryError: config lacks the keys ['max_skill_steps', 'z_dim'], which ...
        """
        if not isinstance(payload, dict):
            raise LibraryError(f"config must be a JSON object, got {type(payload).__name__}")
        version = payload.get("format_version")
        if version != FORMAT_VERSION:
            raise LibraryError(
                f"library format_version {version!r} is not supported (this skillgym reads "
                f"{FORMAT_VERSION}); retrain with `skillgym train-skills` or use a matching skillgym"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise LibraryError(f"config has unknown keys {unknown}; known keys: {sorted(known)}")
        missing = sorted(known - set(payload) - set(ADDED_IN_FORMAT_1))
        if missing:
            raise LibraryError(
                f"config lacks the keys {missing}, which every saved skill library's config holds: the file was "
                "not written by SkillLibrary.save, or was edited. Restore them from the training run or retrain "
                "with `skillgym train-skills`"
            )
        try:
            return cls(**payload)
        except LibraryError:
            raise
        except (TypeError, ValueError) as e:
            raise LibraryError(f"invalid config: {e}") from e
