"""`training.allocator`: mimalloc preloaded by a relaunch, glibc's settings (freed memory reused inside, glibc's
behaviour back after), the pretrain wiring."""

import ctypes
import ctypes.util
import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training import allocator
from training.allocator import keep_freed_memory

REPO_ROOT = Path(__file__).resolve().parents[1]

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


def tiny_hybrid_loss(out: Path, allocator_name: str) -> float:
    """(training loss, allocator that ran) of 3 steps of the tiny hybrid asked to use `allocator_name`, in this
    process; the metrics and training_config.json must record the same allocator."""
    from training.pretrain import pretrain

    metrics = pretrain(model_type="hybrid", preset="tiny", output_dir=out, max_steps=3, eval_steps=100, seed=0,
                       report_to="none", disable_tqdm=True, allocator=allocator_name)
    ran = json.loads((out / "training_config.json").read_text())["allocator"]
    assert ran == metrics["allocator"]
    return metrics["train_loss"], ran


def test_pretrain_in_process_falls_back_to_glibc_settings_and_computes_the_same(tmp_path):
    """`pretrain()` in a process started without mimalloc keeps freed memory with glibc's settings instead (stock
    with `allocator="stock"`); where tensors live changes, not what is computed: the same loss to the last bit."""
    kept, ran_kept = tiny_hybrid_loss(tmp_path / "default", "mimalloc")
    stock, ran_stock = tiny_hybrid_loss(tmp_path / "stock", "stock")
    assert ran_kept == ("glibc-keep" if GLIBC and not torch.cuda.is_available() else "stock")
    assert ran_stock == "stock"
    assert kept == stock


def environment_without_mimalloc() -> dict:
    """This process' environment for a child that starts as a user's command would: no preload, not a relaunch."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", allocator.RELAUNCHED)}


@pytest.mark.skipif(allocator.mimalloc_library() is None, reason="cmeel-mimalloc installs on Linux x86_64/aarch64 only")
def test_cli_restarts_itself_with_mimalloc_and_computes_the_same(tmp_path):
    """`hindi-lm pretrain` from its own command line restarts with mimalloc preloaded (recorded in
    training_config.json) and trains to the same loss as glibc's stock settings. Almost always to the last bit;
    once in nine runs of a 5-step check the loss differed by 2e-7 relative (reruns identical): kernels may take
    other paths for other addresses, so the test allows float noise."""
    out = tmp_path / "cli"
    env = environment_without_mimalloc()
    subprocess.run([sys.executable, "-m", "training.pretrain", "--model-type", "hybrid", "--preset", "tiny",
                    "--output-dir", str(out), "--max-steps", "3", "--eval-steps", "100", "--seed", "0",
                    "--report-to", "none"], check=True, cwd=REPO_ROOT, env=env, capture_output=True)
    assert json.loads((out / "training_config.json").read_text())["allocator"] == "mimalloc"
    loss = json.loads((tmp_path / "cli_checkpoints" / "metrics.json").read_text())["train_loss"]
    assert loss == pytest.approx(tiny_hybrid_loss(tmp_path / "stock", "stock")[0], rel=1e-5, abs=0)


@pytest.mark.skipif(allocator.mimalloc_library() is None, reason="cmeel-mimalloc installs on Linux x86_64/aarch64 only")
def test_finetune_cli_restarts_itself_with_mimalloc_and_scores_the_same(saved_models, shared_data, tmp_path):
    """`hindi-lm finetune` from its own command line restarts with mimalloc too (recorded in the summary's
    settings); `--allocator stock` from Python stays on glibc; the fine-tuned scores are the same."""
    from training.finetune import main

    common = ["--model", str(saved_models["bert"]), "--tasks", "bbc_topic", "--seeds", "0", "--quick",
              "--max-train-examples", "32", "--max-eval-examples", "16", "--shared-data", str(shared_data)]
    env = environment_without_mimalloc()
    subprocess.run([sys.executable, "-m", "training.finetune", *common, "--output", str(tmp_path / "cli.json")],
                   check=True, cwd=REPO_ROOT, env=env, capture_output=True)
    assert main([*common, "--allocator", "stock", "--output", str(tmp_path / "stock.json")]) == 0
    cli, stock = (json.loads((tmp_path / name).read_text()) for name in ("cli.json", "stock.json"))
    assert (cli["settings"]["allocator"], stock["settings"]["allocator"]) == ("mimalloc", "stock")
    scores = [{k: summary["tasks"]["bbc_topic"]["per_seed"][0][k] for k in ("loss", "accuracy", "macro_f1")}
              for summary in (cli, stock)]
    assert scores[0] == pytest.approx(scores[1], rel=1e-5, abs=0)


def test_cli_flag_reaches_the_run(tmp_path):
    """With an explicit argv (called from Python) nothing restarts; `--allocator stock` reaches the run."""
    from training.pretrain import main

    out = tmp_path / "cli"
    assert main(["--model-type", "gpt", "--preset", "tiny", "--output-dir", str(out), "--max-steps", "1",
                 "--report-to", "none", "--allocator", "stock"]) == 0
    assert json.loads((out / "training_config.json").read_text())["allocator"] == "stock"


@pytest.mark.skipif(allocator.mimalloc_library() is None, reason="cmeel-mimalloc installs on Linux x86_64/aarch64 only")
def test_mimalloc_keeps_freed_pages_for_the_next_tensor():
    """In a process started with `mimalloc_environment()`, repeated 64-MB tensors fault in no pages even when
    mimalloc collects between them (`mi_collect(true)`, standing in for the purges a training's frees set off):
    `MIMALLOC_PURGE_DELAY=-1` keeps the freed pages. Without that option the collection hands them back and every
    tensor faults its pages in again (at least 32 each: 2-MB huge pages where mimalloc gets them, else 16,384)."""
    code = ("import ctypes, resource, torch\n"
            "from training.allocator import mimalloc_loaded\n"
            "assert mimalloc_loaded()\n"
            "collect = ctypes.CDLL(None).mi_collect\n"
            "torch.empty(1 << 26, dtype=torch.uint8).fill_(1)\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(5):\n"
            "    collect(ctypes.c_bool(True))\n"
            "    torch.empty(1 << 26, dtype=torch.uint8).fill_(1)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")

    def faults(env):
        done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                              check=True)
        return int(done.stdout.split()[-1])

    env = allocator.mimalloc_environment()
    huge_pages_per_tensor = MB64 // (2 * 1024 * 1024)
    assert faults(env) < huge_pages_per_tensor
    purging = {k: v for k, v in env.items() if k not in allocator.MIMALLOC_OPTIONS}
    assert faults(purging) >= 5 * huge_pages_per_tensor


def test_mimalloc_environment_preloads_in_front_and_sets_its_options(monkeypatch):
    monkeypatch.setattr(allocator, "mimalloc_library", lambda: "/lib/libmimalloc.so")
    env = allocator.mimalloc_environment({"LD_PRELOAD": "/lib/other.so", "PATH": "/bin"})
    assert env == {"LD_PRELOAD": "/lib/libmimalloc.so:/lib/other.so", "PATH": "/bin", "MIMALLOC_PURGE_DELAY": "-1"}
    assert allocator.mimalloc_environment({})["LD_PRELOAD"] == "/lib/libmimalloc.so"
    monkeypatch.setattr(allocator, "mimalloc_library", lambda: None)
    assert allocator.mimalloc_environment({}) is None


def test_relaunch_only_where_asked_and_once(monkeypatch):
    """The same command line is started again with the library preloaded and the relaunch mark set; not with
    another allocator, not in a relaunched process, not where mimalloc is loaded already."""
    launched = []
    monkeypatch.setattr(allocator.os, "execve", lambda path, argv, env: launched.append((path, argv, env)))
    monkeypatch.setattr(allocator, "mimalloc_library", lambda: "/lib/libmimalloc.so")
    monkeypatch.setattr(allocator, "mimalloc_loaded", lambda: False)
    monkeypatch.setattr(allocator.torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(allocator.RELAUNCHED, raising=False)
    monkeypatch.setattr(allocator.sys, "orig_argv", ["python", "-m", "training.pretrain", "--preset", "tiny"])
    allocator.relaunch_with_mimalloc("stock")
    allocator.relaunch_with_mimalloc("glibc-keep")
    assert launched == []
    allocator.relaunch_with_mimalloc("mimalloc")
    (path, argv, env), = launched
    assert (path, argv) == (sys.executable, [sys.executable, "-m", "training.pretrain", "--preset", "tiny"])
    assert env["LD_PRELOAD"].startswith("/lib/libmimalloc.so") and env[allocator.RELAUNCHED] == "1"
    monkeypatch.setenv(allocator.RELAUNCHED, "1")
    allocator.relaunch_with_mimalloc("mimalloc")
    assert len(launched) == 1


def test_unknown_allocator_is_named_before_any_work(tmp_path):
    """Refused by name, by `pretrain()` before the corpus or tokenizer is touched (no output folder made)."""
    from training.pretrain import pretrain

    with pytest.raises(ValueError, match="--allocator must be one of mimalloc, glibc-keep, stock, got 'jemalloc'"):
        with allocator.training_allocator("jemalloc"):
            pass
    with pytest.raises(ValueError, match="got 'jemalloc'"):
        pretrain(model_type="gpt", preset="tiny", output_dir=tmp_path / "run", max_steps=1, allocator="jemalloc")
    assert not (tmp_path / "run").exists() and not (tmp_path / "run_checkpoints").exists()


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
    resident = iter([100, 110, 125, 126, 100, 200])  # read at steps 3..8
    monkeypatch.setattr(allocator, "resident_bytes", lambda: next(resident))
    trims = []
    monkeypatch.setattr(allocator, "trim_heap", lambda: trims.append(callback.steps))
    callback = allocator.HeapTrimCallback(limit=1.25, warmup_steps=3)
    for _ in range(8):
        callback.on_step_end(None, None, None)
    assert callback.baseline == 100
    assert trims == [6, 8] and callback.trims == 2
