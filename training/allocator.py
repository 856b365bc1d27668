"""Keep freed memory in the process during CPU training, with glibc's own malloc settings (`mallopt`).

At `small` every attention-sized tensor ([32 × 8 × 256 × 256], 34-67 MB) is larger than glibc's largest mmap
threshold (32 MB), so glibc maps each one afresh, the kernel zero-fills it page by page on first touch, and unmaps
it when freed: a quarter of the hybrid's CPU time went to the kernel (BENCHMARKS.md). With mmap off and trimming
off, freed blocks stay in the heap and the next step reuses them. Nothing computed changes, only where the bytes
live. The cost is memory: torch allocates with posix_memalign, whose request for a tensor is a little larger than
the block a tensor of the same size freed, so the heap keeps growing by holes (the `small` hybrid: 7.5 GB after the
first steps, 11.9 GB after 48); `HeapTrimCallback` hands the free pages back whenever resident memory passes 1.25×
what it was after the warm-up steps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from contextlib import contextmanager
from functools import cache

from transformers import TrainerCallback

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
# After the context: glibc's default mmap count, and the thresholds its dynamic rule reaches in a training loop
# (the mmap threshold rises to the largest freed mapping up to 32 MB, trimming to twice that); setting any of
# them switches that rule off, so they are written out.
RESTORED = {M_MMAP_MAX: 65536, M_MMAP_THRESHOLD: 32 * 1024 * 1024, M_TRIM_THRESHOLD: 64 * 1024 * 1024}
KEEP = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: -1}  # -1: never trim (mallopt(3))


@cache
def _glibc():
    """The C library when it is glibc with `mallopt` (Linux), else None."""
    if platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _mallopt(libc, settings: dict[int, int]) -> bool:
    return all(libc.mallopt(ctypes.c_int(key), ctypes.c_int(value)) == 1 for key, value in settings.items())


@contextmanager
def keep_freed_memory(enabled: bool = True):
    """Within the block, glibc's malloc serves every size from its heap (no mmap) and does not trim it, so freed
    tensors are reused instead of being unmapped and faulted in again; afterwards the heap is trimmed and the
    settings restored. Yields whether the settings took effect (False off glibc, or when `enabled` is False)."""
    libc = _glibc() if enabled else None
    active = bool(libc) and _mallopt(libc, KEEP)
    try:
        yield active
    finally:
        if active:
            _mallopt(libc, RESTORED)
            trim_heap()


def resident_bytes() -> int:
    """Resident memory of this process (Linux `/proc/self/statm`), 0 where it cannot be read."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc's `malloc_trim(0)`); nothing off glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(ctypes.c_size_t(0))


class HeapTrimCallback(TrainerCallback):
    """Bounds the memory `keep_freed_memory` keeps: records resident memory after `warmup_steps` optimizer steps
    (the heap then holds a whole step's tensors) and trims the heap at a step's end whenever resident memory has
    grown past `limit` times that. Each trim costs one step's page faults again, so it should be rare."""

    def __init__(self, limit: float = 1.25, warmup_steps: int = 3):
        self.limit, self.warmup_steps = limit, warmup_steps
        self.steps, self.baseline, self.trims = 0, 0, 0

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1
        if self.steps == self.warmup_steps:
            self.baseline = resident_bytes()
        elif self.baseline and resident_bytes() > self.limit * self.baseline:
            trim_heap()
            self.trims += 1
