"""Keep freed memory in the process during CPU training, with glibc's own malloc settings (`mallopt`).

At `small` every attention-sized tensor ([32 × 8 × 256 × 256], 34-67 MB) is larger than glibc's largest mmap
threshold (32 MB), so glibc maps each one afresh, the kernel zero-fills it page by page on first touch, and unmaps
it when freed: a quarter of the hybrid's CPU time went to the kernel (BENCHMARKS.md). With mmap off and trimming
off, freed blocks stay in the heap and the next step reuses them. Nothing computed changes, only where the bytes
live; the cost is that the process keeps its peak heap until the run ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from contextlib import contextmanager

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
# After the context: glibc's default mmap count, and the thresholds its dynamic rule reaches in a training loop
# (the mmap threshold rises to the largest freed mapping up to 32 MB, trimming to twice that); setting any of
# them switches that rule off, so they are written out.
RESTORED = {M_MMAP_MAX: 65536, M_MMAP_THRESHOLD: 32 * 1024 * 1024, M_TRIM_THRESHOLD: 64 * 1024 * 1024}
KEEP = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: -1}  # -1: never trim (mallopt(3))


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
            libc.malloc_trim(ctypes.c_size_t(0))
