"""Pretraining with Trainer: each architecture learns, resume is exact, distributed CPU run, Hub upload, compare."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hindi_models.presets import load_preset
from training.pretrain import TrainingDivergedError, pretrain
from training.report import read_log

REPO_ROOT = Path(__file__).resolve().parents[1]
# Tiny and fast: 64-token blocks, batch 8, a high learning rate so a few dozen steps show learning.
FAST = dict(batch_size=8, learning_rate=3e-3, warmup_ratio=0.1, report_to="none", disable_tqdm=True,
            precision="fp32", seed=7)


def fast_preset(**overrides):
    return load_preset("tiny", max_length=64, **overrides)


def preset_file(folder, model_type, max_length):
    """A tiny dropout-free preset as a YAML file, for runs started through the command line."""
    path = folder / "p.yaml"
    path.write_text(f"model_type: {model_type}\nvocab_size: 2000\nhidden_size: 64\nnum_layers: 2\nnum_heads: 2\n"
                    f"max_length: {max_length}\nintermediate_size: 256\ndropout: 0.0\n")
    return str(path)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tok")
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("model_type", ["gpt", "bert", "hybrid"])
def test_each_architecture_learns_and_saves_a_hub_folder(model_type, tmp_path, tokenizer_dir):
    out = tmp_path / model_type
    metrics = pretrain(model_type=model_type, preset=fast_preset(), output_dir=out, tokenizer_path=tokenizer_dir,
                       max_steps=40, eval_steps=10, logging_steps=5, **FAST)
    log = read_log(tmp_path / f"{model_type}_checkpoints" / "log.jsonl")
    train_losses = [r["loss"] for r in log if "loss" in r]
    eval_losses = [r["eval_loss"] for r in log if "eval_loss" in r]
    assert len(train_losses) == 8 and len(eval_losses) == 4
    assert train_losses[-1] < train_losses[0] - 0.5, train_losses
    assert eval_losses[-1] < eval_losses[0], eval_losses
    assert metrics["steps"] == 40 and metrics["tokens_seen"] == 40 * 8 * 64
    expected_keys = {"gpt": {"validation_clm_loss"}, "bert": {"validation_mlm_loss"},
                     "hybrid": {"validation_clm_loss", "validation_mlm_loss"}}[model_type]
    assert expected_keys <= set(metrics) and all(metrics[k] < 7.0 for k in expected_keys)
    for name in ("model.safetensors", "config.json", "tokenizer.json", "README.md", "metrics.json",
                 "training_config.json"):
        assert (out / name).is_file(), name
    assert not list(out.glob("checkpoint-*")), "Trainer checkpoints belong in the checkpoint folder"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["steps"] == 40 and saved["hyperparameters"]["learning_rate"] == 3e-3


def test_sigkilled_run_resumes_with_the_same_loss_curve(tmp_path, tokenizer_dir):
    """Kill a hybrid run with SIGKILL between checkpoints; --resume gives the uninterrupted run's losses."""
    import signal
    import time

    args = ["--model-type", "hybrid", "--preset", preset_file(tmp_path, "hybrid", 128),
            "--tokenizer", str(tokenizer_dir),
            "--max-steps", "30", "--save-steps", "4", "--eval-steps", "15", "--logging-steps", "1",
            "--batch-size", "16", "--learning-rate", "3e-3", "--precision", "fp32", "--report-to", "none",
            "--seed", "7"]
    killed = tmp_path / "killed"
    log = tmp_path / "killed_checkpoints" / "log.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "training.pretrain", "--output-dir", str(killed), *args],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if log.is_file() and any(r["step"] >= 6 for r in read_log(log)):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "model.safetensors").exists()

    from training.cli import main

    assert main(["pretrain", "--output-dir", str(killed), "--resume", *args]) == 0
    assert main(["pretrain", "--output-dir", str(tmp_path / "full"), *args]) == 0
    resumed = [(r["step"], r["loss"]) for r in read_log(log) if "loss" in r]
    full = [(r["step"], r["loss"]) for r in read_log(tmp_path / "full_checkpoints" / "log.jsonl") if "loss" in r]
    assert [s for s, _ in resumed] == list(range(1, 31))
    assert [loss for _, loss in resumed] == pytest.approx([loss for _, loss in full], abs=1e-5)


def test_refuses_existing_run_and_resume_without_checkpoint(tmp_path, tokenizer_dir):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already holds a run; pass --overwrite"):
        pretrain(model_type="gpt", preset=fast_preset(), output_dir=out, tokenizer_path=tokenizer_dir, max_steps=2,
                 **FAST)
    with pytest.raises(FileNotFoundError, match="no complete checkpoint-N folder"):
        pretrain(model_type="gpt", preset=fast_preset(), output_dir=tmp_path / "new", tokenizer_path=tokenizer_dir,
                 max_steps=2, resume=True, **FAST)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        pretrain(model_type="gpt", preset=fast_preset(), output_dir=tmp_path / "file", tokenizer_path=tokenizer_dir,
                 max_steps=2, **FAST)


def test_nan_loss_stops_training_naming_the_step(tmp_path, tokenizer_dir):
    with pytest.raises(TrainingDivergedError, match=r"loss became (nan|inf) at step \d+"):
        pretrain(model_type="gpt", preset=fast_preset(), output_dir=tmp_path / "nan", tokenizer_path=tokenizer_dir,
                 max_steps=30, logging_steps=1, **{**FAST, "learning_rate": 1e12, "warmup_ratio": 0.0})
    assert not (tmp_path / "nan" / "model.safetensors").exists()


def test_word_checkpoints_and_push_to_hub_arguments(tmp_path, tokenizer_dir, monkeypatch):
    import huggingface_hub

    calls = []
    for name in ("create_repo", "create_branch", "upload_folder"):
        monkeypatch.setattr(huggingface_hub.HfApi, name,
                            lambda self, *a, _name=name, **kw: calls.append((_name, a, kw)) or f"{_name}-done")
    out = tmp_path / "gpt"
    metrics = pretrain(model_type="gpt", preset=fast_preset(), output_dir=out, tokenizer_path=tokenizer_dir,
                       word_budget=3000, checkpoint_every_words=1000, push_to_hub="someone/hindi-gpt",
                       hub_private=True, hub_revision="v1", **FAST)
    snapshots = sorted(p.name for p in (tmp_path / "gpt_checkpoints").glob("chck_*"))
    assert snapshots == ["chck_0.001M", "chck_0.002M", "chck_0.003M"]
    assert metrics["words_seen"] >= 3000
    assert calls[0] == ("create_repo", ("someone/hindi-gpt",), {"private": True, "exist_ok": True,
                                                                "repo_type": "model"})
    uploads = [kw for name, _, kw in calls if name == "upload_folder"]
    assert uploads[0]["folder_path"] == str(out) and uploads[0]["revision"] == "v1"
    assert [u["revision"] for u in uploads[1:]] == snapshots
    assert all(u["repo_id"] == "someone/hindi-gpt" for u in uploads)
    branches = [kw["branch"] for name, _, kw in calls if name == "create_branch"]
    assert branches == ["v1", *snapshots]


def test_two_processes_give_the_single_process_loss_curve(tmp_path, tokenizer_dir):
    """accelerate launch, 2 CPU processes x batch 4 == 1 process x batch 8: no data doubled, dropped or reordered."""
    common = ["--model-type", "gpt", "--preset", preset_file(tmp_path, "gpt", 64),
              "--tokenizer", str(tokenizer_dir),
              "--max-steps", "20", "--logging-steps", "1", "--eval-steps", "10", "--learning-rate", "3e-3",
              "--precision", "fp32", "--report-to", "none", "--seed", "7"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "training/configs/cpu_2proc.yaml",
           "-m", "training.pretrain", "--output-dir", str(tmp_path / "ddp"), "--batch-size", "4", *common]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["num_processes"] == 2 and metrics["steps"] == 20
    assert metrics["tokens_seen"] == 20 * 4 * 2 * 64  # global batch = 2 processes x 4 blocks

    from training.cli import main

    assert main(["pretrain", "--output-dir", str(tmp_path / "single"), "--batch-size", "8", *common]) == 0
    ddp = [r["loss"] for r in read_log(tmp_path / "ddp_checkpoints" / "log.jsonl") if "loss" in r]
    single = [r["loss"] for r in read_log(tmp_path / "single_checkpoints" / "log.jsonl") if "loss" in r]
    assert len(ddp) == len(single) == 20
    assert ddp == pytest.approx(single, abs=1e-4)


def test_encoder_positions_flag_overrides_the_preset(tmp_path, tokenizer_dir):
    """The bundled presets use rotary encoder positions; `--encoder-positions absolute` gives stock BERT."""
    from training.cli import main

    assert load_preset("tiny").encoder_position_embeddings == "rotary"
    out = tmp_path / "bert"
    assert main(["pretrain", "--model-type", "bert", "--preset", "tiny", "--encoder-positions", "absolute",
                 "--tokenizer", str(tokenizer_dir), "--max-steps", "2", "--batch-size", "4", "--report-to", "none",
                 "--output-dir", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    saved_preset = json.loads((out / "training_config.json").read_text())["preset"]
    assert saved_preset["encoder_position_embeddings"] == "absolute"
    with pytest.raises(SystemExit) as refused:
        main(["pretrain", "--encoder-positions", "alibi", "--output-dir", str(tmp_path / "x")])
    assert refused.value.code == 2


def test_set_overrides_preset_keys_and_hyperparameters(tmp_path, tokenizer_dir, capsys):
    """`--set KEY=VALUE` reaches the saved config (preset keys) and the run's hyperparameters; bad keys, values and
    forms are refused naming them, before anything is written."""
    from training.cli import main

    out = tmp_path / "gpt"
    assert main(["pretrain", "--preset", "tiny", "--tokenizer", str(tokenizer_dir), "--max-steps", "2",
                 "--batch-size", "4", "--report-to", "none", "--output-dir", str(out), "--set", "dropout=0",
                 "--set", "num_layers=1", "--set", "adam_beta2=0.99", "--set", "lr_scheduler_type=linear"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["n_layer"], config["resid_pdrop"], config["attn_pdrop"]) == (1, 0.0, 0.0)
    hyperparameters = json.loads((out / "training_config.json").read_text())["hyperparameters"]
    assert (hyperparameters["adam_beta2"], hyperparameters["lr_scheduler_type"]) == (0.99, "linear")
    capsys.readouterr()
    for item, message in [("drop=0", "unknown key 'drop'"), ("adam_beta2=high", "adam_beta2: expected float"),
                          ("dropout", "expected KEY=VALUE"), ("dropout=1.5", "dropout: must be in [0, 1)"),
                          ("model_type=bert", "unknown key 'model_type'")]:
        assert main(["pretrain", "--preset", "tiny", "--output-dir", str(tmp_path / "x"), "--set", item]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_reports_bad_input_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "training.cli", "pretrain", "--output-dir", str(tmp_path / "x"),
         "--corpus", str(tmp_path / "missing.txt")],
        capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("hindi-lm: error:") and "missing.txt" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_compare_writes_every_artifact(tmp_path, shared_data):
    from training.compare import compare

    run = tmp_path / "run"
    results = compare(run_dir=run, preset=fast_preset(), word_budget=4000, max_eval_texts=4, max_pairs=12,
                      finetune_examples=16, cards_dir=tmp_path / "cards",
                      **{k: v for k, v in FAST.items() if k != "seed"})
    for name in ("gpt", "bert", "hybrid", "gpt_bert"):
        assert (run / name / "model.safetensors").is_file() and (run / name / "README.md").is_file()
        assert (run / "checkpoints" / name / "log.jsonl").is_file()
    assert (run / "tokenizer" / "tokenizer.json").is_file()
    for name in ("results.json", "report.md", "loss_curves.png", "minimal_pairs.png"):
        assert (run / name).stat().st_size > 0, name
    saved = json.loads((run / "results.json").read_text())
    assert set(saved["models"]) == {"gpt", "bert", "hybrid", "gpt_bert"}  # every architecture by default
    assert saved["run"]["minimal_pairs_scored"] == 12
    assert saved["run"]["encoder_position_embeddings"] == "rotary"  # the bundled presets' default
    assert json.loads((run / "bert" / "config.json").read_text())["model_type"] == "roformer"
    for name in ("hybrid", "gpt_bert"):
        assert {s["kind"] for s in saved["models"][name]["evaluation"].values()} == {"causal", "masked"}
    # Same tokenizer, same words for every model.
    assert len({m["words_seen"] for m in saved["models"].values()}) == 1
    report = (run / "report.md").read_text()
    assert "| **hybrid** |" in report and "| **gpt_bert** |" in report
    assert "Generation samples" in report and "NER F1" in report
    assert "word unigram (BASELINES)" in report
    finetuned = saved["models"]["hybrid"]["finetune"]
    assert set(finetuned) == {"pos", "ner", "bbc_topic", "iitp_sentiment"}
    assert 0.0 <= finetuned["pos"]["accuracy"]["mean"] <= 1.0 and finetuned["ner"]["n_train"] == 16
    assert results["models"]["gpt"]["samples"][0]["prompt"] == "भारत एक"
    # The cards are re-rendered with the evaluation: model-index carries the measured minimal-pair accuracy.
    from huggingface_hub import ModelCard

    for name, section in (("gpt", "causal"), ("bert", "masked"), ("hybrid", "encoder"), ("gpt_bert", "masked")):
        card = ModelCard.load(run / name / "README.md")
        assert card.content == (tmp_path / "cards" / f"{name}.md").read_text()
        pairs = next(m for m in card.data.eval_results if m.dataset_type == "bhs-hindi-minimal-pairs"
                     and f"({section}," in m.metric_name)
        accuracy = saved["models"][name]["evaluation"][section]["minimal_pairs"]["accuracy"]
        assert pairs.metric_type == "accuracy" and pairs.metric_value == pytest.approx(accuracy, abs=1e-4)
        pos = next(m for m in card.data.eval_results if m.dataset_type == "universal_dependencies")
        assert (pos.task_type, pos.metric_type) == ("token-classification", "accuracy")
        assert pos.metric_value == pytest.approx(finetuned["pos"]["accuracy"]["mean"] if name == "hybrid"
                                                 else saved["models"][name]["finetune"]["pos"]["accuracy"]["mean"],
                                                 abs=1e-4)
        assert "seed" in card.content and "pairs of" in card.content
    with pytest.raises(FileExistsError, match="already holds a run"):
        compare(run_dir=run, preset=fast_preset(), word_budget=100)


def test_step_time_callback_leaves_out_warm_up_and_evaluation(monkeypatch):
    """The speed record: steps after the warm-up, the interval after an evaluation or save left out (its extra
    time reported on its own), median and mean of the steady steps."""
    from types import SimpleNamespace

    from training import callbacks

    clock = iter([0.0, 10.0, 11.0, 12.0, 15.0, 16.0, 18.0])  # begin, then the end of steps 1..6
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    timer = callbacks.StepTimeCallback(tokens_per_step=100, warmup_steps=1)
    state = SimpleNamespace(global_step=0)
    timer.on_train_begin(None, state, None)
    for step, evaluates in zip(range(1, 7), [False, False, True, False, False, False]):
        state.global_step = step
        timer.on_step_end(None, state, SimpleNamespace(should_evaluate=evaluates, should_save=False))
    # steps: 10 s (warm-up), 1, 1 (then evaluation), 3 (left out), 1, 2
    assert timer.summary() == {"steady_steps": 4, "step_seconds": 1.0, "mean_step_seconds": 1.25,
                               "steady_tokens_per_second": 100.0, "warmup_steps": 1, "warmup_seconds": 10.0,
                               "eval_and_save_seconds": 2.0}
