"""Stage 1: skill extraction (paper §4.1): encoders, embedding differences, K-means, median
filter, segments, the :class:`SkillLabeler` artifact and its report.

Imports are lazy so that ``skillgym.extract.labels`` (read by stage 2) does not pull in torch.

Example:
    >>> from skillgym.extract import SkillLabeler, extract_skills
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ExtractArgs": "skillgym.extract.config",
    "SkillLabels": "skillgym.extract.labels",
    "LabelsError": "skillgym.extract.labels",
    "SkillLabeler": "skillgym.extract.labeler",
    "LabelerError": "skillgym.extract.labeler",
    "extract_skills": "skillgym.extract.labeler",
    "label_dataset": "skillgym.extract.labeler",
    "Encoder": "skillgym.extract.encoders",
    "EncoderError": "skillgym.extract.encoders",
    "EncoderInputError": "skillgym.extract.encoders",
    "register_encoder": "skillgym.extract.encoders",
    "make_encoder": "skillgym.extract.encoders",
    "available_encoders": "skillgym.extract.encoders",
    "median_filter": "skillgym.extract.segments",
    "find_segments": "skillgym.extract.segments",
    "download_weights": "skillgym.extract.download",
    "write_report": "skillgym.extract.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'skillgym.extract' has no attribute {name!r}")
