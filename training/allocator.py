"""The memory allocator of CPU training: keep freed memory in the process, with mimalloc or glibc's own settings.

At `small` every attention-sized tensor ([32 × 8 × 256 × 256], 34-67 MB) is larger than glibc's largest mmap
threshold (32 MB), so glibc maps each one afresh, the kernel zero-fills it page by page on first touch, and unmaps
it when freed: a quarter of the hybrid's CPU time went to the kernel (BENCHMARKS.md). With mmap off and trimming
off, freed blocks stay in the heap and the next step reuses them. Nothing computed changes, only where the bytes
live. The cost is memory: torch allocates with posix_memalign, whose request for a tensor is a little larger than
the block a tensor of the same size freed, so the heap keeps growing by holes (the `small` hybrid: 7.5 GB after the
first steps, 11.9 GB after 48); `HeapTrimCallback` hands the free pages back whenever resident memory passes 1.25×
what it was after the warm-up steps.

Better still is an allocator built for this: `mimalloc` (Microsoft's, from the `cmeel-mimalloc` wheel) serves
aligned requests from size classes, so a freed tensor's block fits the next tensor of its size exactly, and with
`MIMALLOC_PURGE_DELAY=-1` it never hands freed pages back: the `small` hybrid faults no pages after its second step
and stays at 7.2 GB (glibc with the settings above: 50-100 thousand faults a step and a trim every ~10 steps). An
allocator is chosen when a process starts (`LD_PRELOAD`), so `relaunch_with_mimalloc` starts the `hindi-lm` process
again with it before anything is computed; `pretrain()` called in a process without it falls back to glibc's
settings.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys
from contextlib import contextmanager
from functools import cache
from importlib import metadata

import torch
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

ALLOCATORS = ("mimalloc", "glibc-keep", "stock")  # `hindi-lm pretrain --allocator`: the default first
# Never purge (decommit) freed pages: they are reused by the next step's tensors instead of being faulted in again.
MIMALLOC_OPTIONS = {"MIMALLOC_PURGE_DELAY": "-1"}
# Set in a relaunched process, so that a preload the dynamic loader refused does not relaunch it again.
RELAUNCHED = "HINDI_LM_RELAUNCHED_WITH_MIMALLOC"


def check_allocator(name: str) -> None:
    """Refuse an allocator name that is not one of `ALLOCATORS`, naming it."""
    if name not in ALLOCATORS:
        raise ValueError(f"--allocator must be one of {', '.join(ALLOCATORS)}, got {name!r}")


def mimalloc_library() -> str | None:
    """Path of `libmimalloc.so` from the installed `cmeel-mimalloc` wheel (Linux), else None."""
    if sys.platform != "linux":
        return None
    try:
        library = metadata.distribution("cmeel-mimalloc").locate_file("cmeel.prefix/lib/libmimalloc.so")
    except metadata.PackageNotFoundError:
        return None
    return str(library) if os.path.isfile(library) else None


def mimalloc_loaded() -> bool:
    """Whether this process allocates with mimalloc (preloaded: its symbols are in the global namespace)."""
    return sys.platform == "linux" and hasattr(ctypes.CDLL(None), "mi_version")


def mimalloc_environment(environ: dict | None = None) -> dict | None:
    """A copy of `environ` (default: this process') that starts a process with mimalloc preloaded and
    `MIMALLOC_OPTIONS`, or None where the library is not installed."""
    library = mimalloc_library()
    if library is None:
        return None
    env = dict(os.environ if environ is None else environ)
    env["LD_PRELOAD"] = ":".join(filter(None, [library, env.get("LD_PRELOAD")]))
    return {**env, **MIMALLOC_OPTIONS}


def process_allocator() -> str:
    """The allocator this process runs with outside `training_allocator`: "mimalloc" or "stock" (glibc's defaults)."""
    return "mimalloc" if mimalloc_loaded() else "stock"


def relaunch_with_mimalloc(allocator: str) -> None:
    """Replace this process by the same command with mimalloc preloaded (`os.execve`; it does not return) when
    `allocator` is "mimalloc", it is not loaded yet, the library is installed, no GPU is visible (measured on CPU
    only) and this process is not already a relaunch. Call it before any work; otherwise it returns and training
    falls back to glibc's settings."""
    if allocator != "mimalloc" or mimalloc_loaded() or os.environ.get(RELAUNCHED):
        return
    env = mimalloc_environment()
    if env is None or torch.cuda.is_available():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**env, RELAUNCHED: "1"})


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


@contextmanager
def training_allocator(requested: str = ALLOCATORS[0]):
    """The allocator settings of a training run; yields the allocator it runs with: "mimalloc" where this process
    was started with it, else "glibc-keep" (`keep_freed_memory`) when no GPU is visible, unless `requested` is
    "stock", else "stock" (glibc's defaults). `requested` is one of `ALLOCATORS`."""
    check_allocator(requested)
    if mimalloc_loaded():
        yield "mimalloc"
        return
    # on a GPU the host allocator holds no activations (and nothing was measured there)
    with keep_freed_memory(requested != "stock" and not torch.cuda.is_available()) as kept:
        yield "glibc-keep" if kept else "stock"


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
