"""Several processes on one machine: the `hindi-lm` route under `accelerate launch`, and FSDP's final save.

Both runs use 2 CPU processes on gloo; tests/distributed_run.py explains how the FSDP one runs FSDP2 on CPU.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from hindi_models.factory import WEIGHTS, ModelFactory
from hindi_models.presets import load_preset
from training.callbacks import full_state_dict

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
from distributed_run import probe_logits  # noqa: E402

# Saved and in-memory weights are the same fp32 numbers; the logits only differ by how a forward is scheduled.
LOGIT_TOLERANCE = 1e-5
STEPS = 3  # each run: optimizer steps, then one evaluation and one Trainer checkpoint at the end


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory, tokenizer):
    # The FSDP run reads a ready tokenizer (faster); the route test trains its own on the main process.
    folder = tmp_path_factory.mktemp("tok")
    tokenizer.save_pretrained(folder)
    return folder


def free_port() -> int:
    """A port for the rendezvous, so parallel runs (other test sessions) do not meet on accelerate's 29500."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tmp_path, config_file, program, model_type, tokenizer_dir, *extra) -> Path:
    """`accelerate launch --config_file CONFIG PROGRAM pretrain ...` with 2 CPU processes; returns the output dir."""
    preset = tmp_path / "p.yaml"
    preset.write_text(f"model_type: {model_type}\nvocab_size: 2000\nhidden_size: 64\nnum_layers: 2\nnum_heads: 2\n"
                      "max_length: 64\nintermediate_size: 256\ndropout: 0.0\n")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_file),
           "--main_process_port", str(free_port()), *program, "pretrain", "--model-type", model_type,
           "--preset", str(preset), *(["--tokenizer", str(tokenizer_dir)] if tokenizer_dir else []),
           "--output-dir", str(out),
           "--max-steps", str(STEPS), "--eval-steps", str(STEPS), "--logging-steps", "1", "--batch-size", "4",
           "--learning-rate", "3e-3", "--precision", "fp32", "--report-to", "none", "--seed", "7", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # The timeout turns a deadlocked save (rank 0 alone in a collective) into a failure.
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return out


@pytest.mark.slow
def test_hindi_lm_route_on_two_cpu_processes(tmp_path):
    """The documented route, `accelerate launch -m training.cli pretrain`, trains as one job of 2 processes
    (global batch 2 x 4), the main process training the tokenizer the other one then reads, and saves the weights
    Trainer's own last checkpoint holds."""
    out = launch(tmp_path, REPO_ROOT / "training/configs/cpu_2proc.yaml", ["-m", "training.cli"], "gpt", None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_processes"] == 2 and metrics["steps"] == STEPS
    assert metrics["tokens_seen"] == STEPS * 4 * 2 * 64
    saved = load_file(str(out / WEIGHTS))
    checkpoint = load_file(str(tmp_path / "run_checkpoints" / f"checkpoint-{STEPS}" / WEIGHTS))
    assert saved.keys() == checkpoint.keys()
    assert all(torch.equal(saved[k], checkpoint[k]) for k in saved)
    assert ModelFactory().load_model(out).config.model_type == "gpt2"


@pytest.mark.slow
def test_fsdp_run_saves_the_model_it_trained(tmp_path, tokenizer_dir):
    """training/configs/fsdp_gpu.yaml (FSDP2, SHARDED_STATE_DICT) on 2 CPU processes: the hybrid trains sharded,
    and its saved folder (and BabyLM snapshot) gives the logits the sharded model gives in memory."""
    config = yaml.safe_load((REPO_ROOT / "training/configs/fsdp_gpu.yaml").read_text())
    config.update(num_processes=2, mixed_precision="no")  # the machine's process count; CPUs train in fp32
    config_file = tmp_path / "fsdp_cpu.yaml"
    config_file.write_text(yaml.safe_dump(config))
    record_file = tmp_path / "record.pt"
    out = launch(tmp_path, config_file, [str(REPO_ROOT / "tests/distributed_run.py"), str(record_file)], "hybrid",
                 tokenizer_dir, "--checkpoint-every-words", "500")
    record = torch.load(record_file, weights_only=False)
    wrapping = record["wrapping"]
    assert (wrapping["distributed_type"], wrapping["fsdp_version"]) == ("DistributedType.FSDP", 2)
    assert wrapping["dtensor_parameters"] == wrapping["parameters"]  # every parameter sharded...
    assert wrapping["local_numel"] < wrapping["numel"]  # ...and rank 0 holds only part of the model

    saved = load_file(str(out / WEIGHTS))
    gathered = record["state_dict"]  # the weights as the ranks held them, gathered tensor by tensor
    assert saved.keys() <= gathered.keys()  # what is left out are the tied copies of the token embedding
    assert all(torch.equal(saved[k], gathered[k]) for k in saved)

    model = ModelFactory().load_model(out)
    assert type(model).__name__ == "HybridGPTBERTForPreTraining"
    assert not list(out.glob("_fsdp*.py")), "torch's FSDP sources copied as remote code"
    with torch.no_grad():
        logits = probe_logits(model)
    assert logits.keys() == record["logits"].keys() == {"clm_logits", "mlm_logits"}
    for name, expected in record["logits"].items():
        assert (logits[name] - expected).abs().max().item() <= LOGIT_TOLERANCE, name

    snapshot = tmp_path / "run_checkpoints" / "chck_0.0005M"
    assert load_file(str(snapshot / WEIGHTS)).keys() == saved.keys()
    assert ModelFactory().load_model(snapshot).config.model_type == model.config.model_type


def test_save_from_full_state_dict_writes_the_plain_folder(tmp_path, tokenizer):
    """The FSDP save path without processes: a folder written from a model plus its full state dict is the
    folder written from the model itself (same files, same weights), and weights that do not fit are refused."""
    factory = ModelFactory(load_preset("tiny", model_type="hybrid"), output_root=tmp_path)
    torch.manual_seed(0)
    model = factory.create_model(tokenizer=tokenizer, verbose=False)
    assert full_state_dict(model) is None  # one process: nothing to gather, save_pretrained reads the model
    plain = factory.save_model(model, tokenizer, checkpoint_name="plain")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.nn.init.zeros_(model.decoder.wte.weight)  # the copy must take its weights from `state`, not the model
    gathered = factory.save_model(model, tokenizer, checkpoint_name="gathered", state_dict=state)
    assert sorted(p.name for p in plain.iterdir()) == sorted(p.name for p in gathered.iterdir())
    for name in ("config.json", "tokenizer.json", "README.md"):
        assert (plain / name).read_text() == (gathered / name).read_text(), name
    expected, got = load_file(str(plain / WEIGHTS)), load_file(str(gathered / WEIGHTS))
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    with pytest.raises(RuntimeError, match="Missing key"):
        factory.save_model(model, tokenizer, checkpoint_name="bad", state_dict={})
    assert not (tmp_path / factory.experiment_name / "bad").exists()
