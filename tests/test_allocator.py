"""`training.allocator.keep_freed_memory`: freed memory reused inside, glibc's behaviour back after, pretrain wiring."""

import ctypes
import ctypes.util
import json
import platform
import resource

import pytest
import torch

from training.allocator import keep_freed_memory

GLIBC = platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's; elsewhere keep_freed_memory does nothing")
MB64 = 64 * 1024 * 1024


def pages_per_tensor() -> int:
    """Pages a fresh 64-MB mapping faults in: 2-MB huge pages where transparent huge pages are always on."""
    try:
        always = "[always]" in open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        always = False
    return MB64 // (2 * 1024 * 1024 if always else resource.getpagesize())


def faults_of_large_tensors(count: int = 5) -> int:
    """Minor page faults taken while allocating, touching and freeing `count` 64-MB tensors one after another."""
    torch.empty(MB64, dtype=torch.uint8).fill_(1)  # the first one may grow the heap either way
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(count):
        torch.empty(MB64, dtype=torch.uint8).fill_(1)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def mapped_for_a_huge_tensor() -> int:
    """How many mmapped chunks glibc adds to hold a 4-GB tensor (never touched, so cheap): 1 with its default
    settings (no block of the heap is that large here), 0 where mmap is off."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("mallinfo2 needs glibc >= 2.33")
    libc.mallinfo2.restype = _MallInfo2
    before = libc.mallinfo2().hblks
    huge = torch.empty(4 << 30, dtype=torch.uint8)
    during = libc.mallinfo2().hblks
    del huge
    return during - before


@needs_glibc
def test_large_tensors_reuse_freed_memory_inside():
    """A 64-MB tensor is above glibc's largest mmap threshold (32 MB): by default each one is a fresh mapping
    faulted in page by page (16,384 pages of 4 KB); inside the block the freed heap is reused and touching it
    faults (next to) nothing."""
    with keep_freed_memory() as active:
        assert active is True
        # The first rounds still grow the heap: torch allocates with posix_memalign, whose request is a little
        # larger than the block the previous tensor of the same size freed, until freed neighbours coalesce (here
        # after seven blocks; then two alternate).
        faults_of_large_tensors(count=10)
        inside = faults_of_large_tensors()
    assert inside < pages_per_tensor() // 2, inside


@needs_glibc
def test_glibc_maps_large_tensors_again_after_the_block():
    """After the block (here the heap may still hold freed blocks, which glibc reuses first) a tensor larger than
    any of them is an mmapped chunk again, also when the block raised."""
    with keep_freed_memory():
        faults_of_large_tensors()
    assert mapped_for_a_huge_tensor() == 1
    with pytest.raises(RuntimeError, match="boom"):
        with keep_freed_memory():
            raise RuntimeError("boom")
    assert mapped_for_a_huge_tensor() == 1


def test_disabled_block_changes_nothing():
    with keep_freed_memory(enabled=False) as active:
        assert active is False
        if GLIBC:
            assert mapped_for_a_huge_tensor() == 1


def test_pretrain_keeps_freed_memory_unless_told_otherwise_and_computes_the_same(tmp_path):
    """The allocator settings change where tensors live, not what is computed: the same seed gives the same
    training loss to the last bit with and without `stock_malloc`, and training_config.json records which ran."""
    from training.pretrain import pretrain

    def loss(stock):
        out = tmp_path / f"run-{stock}"
        metrics = pretrain(model_type="hybrid", preset="tiny", output_dir=out, max_steps=3, eval_steps=100, seed=0,
                           report_to="none", disable_tqdm=True, stock_malloc=stock)
        kept = json.loads((out / "training_config.json").read_text())["kept_freed_memory"]
        assert kept is (GLIBC and not stock and not torch.cuda.is_available())
        return metrics["train_loss"]

    assert loss(False) == loss(True)


def test_cli_flag_reaches_the_run(tmp_path):
    from training.pretrain import main

    out = tmp_path / "cli"
    assert main(["--model-type", "gpt", "--preset", "tiny", "--output-dir", str(out), "--max-steps", "1",
                 "--report-to", "none", "--stock-malloc"]) == 0
    assert json.loads((out / "training_config.json").read_text())["kept_freed_memory"] is False


@needs_glibc
def test_trim_heap_gives_kept_memory_back():
    """Inside the block freed tensors stay resident; trim_heap hands their pages back to the system."""
    from training.allocator import resident_bytes, trim_heap

    with keep_freed_memory():
        tensors = [torch.ones(MB64, dtype=torch.uint8) for _ in range(8)]
        del tensors
        kept = resident_bytes()
        trim_heap()
        trimmed = resident_bytes()
    assert kept - trimmed > 4 * MB64, (kept, trimmed)


def test_heap_trim_callback_trims_only_past_its_limit(monkeypatch):
    """Baseline after the warm-up steps; a trim at each later step end where resident memory exceeds 1.25x it."""
    from training import allocator

    resident = iter([100, 110, 125, 126, 100, 200])  # read at steps 3..8
    monkeypatch.setattr(allocator, "resident_bytes", lambda: next(resident))
    trims = []
    monkeypatch.setattr(allocator, "trim_heap", lambda: trims.append(callback.steps))
    callback = allocator.HeapTrimCallback(limit=1.25, warmup_steps=3)
    for _ in range(8):
        callback.on_step_end(None, None, None)
    assert callback.baseline == 100
    assert trims == [6, 8] and callback.trims == 2
