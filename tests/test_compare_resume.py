"""`hindi-lm compare --resume`: a comparison stopped between models and inside one finishes as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from test_pretrain import REPO_ROOT
from training.callbacks import COMPLETE_MARKER
from training.cli import main

# Timings differ between runs; Trainer's `train_loss` averages the steps of its own process only; the allocator is
# mimalloc in the killed command-line runs (they restart themselves with it) and glibc's in this test's process.
NOT_COMPARED = {"date", "wall_seconds", "train_seconds", "train_tokens_per_second", "speed", "train_loss",
                "texts_per_second", "pairs_per_second", "seconds", "allocator"}


def _comparable(value):
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in NOT_COMPARED}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _differences(a, b, path="", tolerance=1e-5) -> list[str]:
    """Paths where two JSON values differ (numbers beyond `tolerance`, relative or absolute)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}.{k}", tolerance)]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]", tolerance)]
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return [] if a == pytest.approx(b, rel=tolerance, abs=tolerance) else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _compare_args(tmp_path, run, shared_data):
    preset = tmp_path / "p.yaml"
    preset.write_text("model_type: gpt\nvocab_size: 2000\nhidden_size: 64\nnum_layers: 2\nnum_heads: 2\n"
                      "max_length: 64\nintermediate_size: 256\ndropout: 0.0\ntraining:\n  all: {batch_size: 4}\n")
    return ["compare", "--output-dir", str(run), "--preset", str(preset), "--models", "gpt", "bert",
            "--word-budget", "6000", "--max-eval-texts", "4", "--max-pairs", "12", "--finetune-examples", "0",
            "--precision", "fp32", "--shared-data", str(shared_data)]


def _run_until(args, stop_when, timeout=300):
    """Start `hindi-lm compare` in a fresh process and SIGKILL it as soon as `stop_when()` holds."""
    proc = subprocess.Popen([sys.executable, "-m", "training.cli", *args], cwd=REPO_ROOT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if stop_when():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"


def test_compare_killed_between_and_inside_models_resumes_to_the_same_results(tmp_path, shared_data):
    run = tmp_path / "stopped"
    args = _compare_args(tmp_path, run, shared_data)
    bert = run / "checkpoints" / "bert"

    _run_until(args, lambda: (run / "checkpoints" / "gpt" / "compare_metrics.json").is_file())  # between models
    assert not (run / "results.json").exists()
    _run_until([*args, "--resume"],  # inside bert, after its second checkpoint
               lambda: len(list(bert.glob(f"checkpoint-*/{COMPLETE_MARKER}"))) >= 2)
    assert not (run / "bert" / "model.safetensors").exists()
    assert main([*args, "--resume"]) == 0
    assert main(_compare_args(tmp_path, tmp_path / "full", shared_data)) == 0

    resumed = json.loads((run / "results.json").read_text())
    full = json.loads((tmp_path / "full" / "results.json").read_text())
    assert resumed["models"]["bert"]["steps"] == full["models"]["bert"]["steps"] > 10
    # Resumed pretraining matches to float noise (1e-5 on the losses, as for `pretrain --resume`).
    assert _differences(_comparable(resumed), _comparable(full)) == []

def test_compare_resume_refuses_other_settings_and_a_folder_without_a_run(tmp_path, shared_data, capsys):
    run = tmp_path / "run"
    args = _compare_args(tmp_path, run, shared_data)
    assert main([*args, "--resume"]) == 2
    assert "--resume given but this folder holds no compare run to resume" in capsys.readouterr().err
    from training.compare import record_settings

    record_settings(tmp_path, False, word_budget=6000, seed=1)
    record_settings(tmp_path, True, word_budget=6000, seed=1)  # the same settings resume
    with pytest.raises(ValueError, match=r"compare_settings\.json: word_budget was 6000, now 7000; --resume needs"):
        record_settings(tmp_path, True, word_budget=7000, seed=1)
    # A run folder from before per-model budgets has no `word_budgets`: one budget for all still resumes it.
    record_settings(tmp_path, True, word_budget=6000, word_budgets=None, seed=1)
    assert main([*args, "--resume", "--overwrite"]) == 2
    assert "--overwrite and --resume exclude each other" in capsys.readouterr().err


def test_per_model_word_budgets_reach_each_model_the_report_and_the_settings(tmp_path, shared_data, capsys):
    """`--word-budget 6000 bert=3000`: BERT trains half GPT's steps, results and report say each model's budget,
    and a resume with another per-model budget is refused."""
    from training.compare import parse_word_budgets

    assert parse_word_budgets(["25e6", "hybrid=14.5e6"]) == (25_000_000, {"hybrid": 14_500_000})
    run = tmp_path / "run"
    args = _compare_args(tmp_path, run, shared_data)
    budget = args.index("--word-budget") + 1
    assert main([*args[:budget + 1], "bert=3000", *args[budget + 1:]]) == 0

    results = json.loads((run / "results.json").read_text())
    assert results["run"]["word_budgets"] == {"gpt": 6000, "bert": 3000}
    gpt, bert = results["models"]["gpt"]["steps"], results["models"]["bert"]["steps"]
    assert bert > 5 and gpt in (2 * bert - 1, 2 * bert)  # ceil(2x) against 2·ceil(x), same blocks per step
    assert "word budgets set per model (gpt 6,000, bert 3,000 words)" in (run / "report.md").read_text()
    assert main([*args[:budget + 1], "bert=4000", *args[budget + 1:], "--resume"]) == 2
    assert "word_budgets was {'bert': 3000}, now {'bert': 4000}" in capsys.readouterr().err
