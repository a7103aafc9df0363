"""CPU performance helpers for skill-space RL."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 32 * 2**20, trim_threshold: int = 512 * 2**20) -> bool:
    """Ask glibc's malloc to keep freed memory instead of returning it to the OS at once (Linux only).

    A SkillSAC update evaluates the critics at all K skills of every state, so it allocates and frees tensors
    of a few MB many times per step. With glibc's defaults each of them is a fresh ``mmap`` or a heap that was
    just trimmed, and every page is faulted in and zeroed again: on CPU that can cost as much as the matmuls
    (``python benchmarks/skillsac_updates.py --malloc default`` measures updates without it). This is
    process-wide, like setting ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` (or using
    jemalloc/tcmalloc); the cost is that up to ``trim_threshold`` bytes of freed heap stay mapped. Call it
    once, before training.

    :return: whether the settings were applied (False on non-glibc platforms)
    """
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )
