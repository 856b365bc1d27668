"""Preset loading/validation and the ModelFactory API (create, save, checkpoint, load)."""

import json
import os

import pytest
import torch

from hindi_models.factory import ModelFactory, atomic_directory, read_model_type
from hindi_models.presets import PresetError, available_presets, load_preset


def test_bundled_presets_carry_the_design_values():
    assert {"tiny", "small", "base", "large"} <= set(available_presets())
    shapes = {name: load_preset(name) for name in ("small", "base", "large")}
    got = {n: (p.hidden_size, p.num_layers, p.num_heads, p.max_length, p.intermediate_size, p.dropout)
           for n, p in shapes.items()}
    assert got == {"small": (512, 6, 8, 256, 2048, 0.1), "base": (768, 12, 12, 512, 3072, 0.1),
                   "large": (1024, 24, 16, 1024, 4096, 0.1)}


def test_overrides_are_validated_like_file_values():
    preset = load_preset("tiny", model_type="bert", hidden_size=96, num_heads=4)
    assert (preset.model_type, preset.hidden_size, preset.num_heads) == ("bert", 96, 4)
    with pytest.raises(PresetError, match="hidden_size: 96 is not divisible by num_heads 5"):
        load_preset("tiny", hidden_size=96, num_heads=5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("model_type: gpt\nhidden_sise: 64\n", r"bad\.yaml: unknown key 'hidden_sise'"),
        ("model_type: gpt\nnum_layers: two\n", r"bad\.yaml: num_layers: expected int, got str 'two'"),
        ("model_type: gpt\nhidden_size: 100\nnum_heads: 3\n", r"bad\.yaml: hidden_size: 100 is not divisible by num_heads 3"),
        ("model_type: t5\n", r"bad\.yaml: model_type: unknown value 't5'"),
        ("model_type: gpt\nhidden_size: [64\n", r"bad\.yaml: YAML syntax error \(line \d+"),
        ("model_type: gpt\ndropout: true\n", r"bad\.yaml: dropout: expected float, got bool"),
        ("- gpt\n- bert\n", r"bad\.yaml: expected a mapping"),
        ("training:\n  gtp: {learning_rate: 0.001}\n", r"bad\.yaml: training\.gtp"),
    ],
)
def test_bad_preset_files_name_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PresetError, match=message):
        load_preset(path)


def test_unknown_preset_and_non_utf8_file(tmp_path):
    with pytest.raises(PresetError, match="unknown preset 'huge'"):
        load_preset("huge")
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model_type: gpt # caf\xe9\n".encode("latin-1"))
    with pytest.raises(PresetError, match="latin1.yaml: not UTF-8"):
        load_preset(path)


def test_training_defaults_merge_all_then_architecture(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("training:\n  all: {learning_rate: 0.001, warmup_ratio: 0.02}\n  bert: {learning_rate: 0.0005}\n")
    preset = load_preset(path)
    assert preset.training_defaults("bert") == {"learning_rate": 0.0005, "warmup_ratio": 0.02}
    assert preset.training_defaults("gpt") == {"learning_rate": 0.001, "warmup_ratio": 0.02}


def test_create_model_prints_shape_and_counts(capsys, tokenizer):
    model = ModelFactory(load_preset("tiny", model_type="hybrid")).create_model(tokenizer=tokenizer)
    printed = capsys.readouterr().out
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable < total  # the rotary encoder's fixed sinusoidal table is not trained
    assert f"vocab {len(tokenizer):,}, hidden 64, layers 2, heads 2" in printed
    assert f"{total:,} total, {trainable:,} trainable" in printed


def test_save_model_writes_a_hub_ready_folder(saved_models):
    for model_type, folder in saved_models.items():
        names = set(os.listdir(folder))
        assert {"model.safetensors", "config.json", "tokenizer.json", "metrics.json", "training_config.json",
                "README.md"} <= names, model_type
        assert not any(name.endswith((".pt", ".bin", ".pth")) for name in names)
        assert json.loads((folder / "metrics.json").read_text()) == {"val_loss": 1.5}
        assert json.loads((folder / "training_config.json").read_text())["preset"]["model_type"] == model_type
        card = (folder / "README.md").read_text()
        assert "language: hi" in card and "library_name: transformers" in card
        assert ("trust_remote_code=True" in card) == (model_type == "hybrid")
        assert "val_loss" in card and "model-index" in card
    assert "pipeline_tag: fill-mask" in (saved_models["bert"] / "README.md").read_text()


def test_load_model_returns_eval_mode_for_each_type(saved_models):
    factory = ModelFactory("tiny")
    names = {t: type(factory.load_model(f)).__name__ for t, f in saved_models.items()}
    assert names == {"gpt": "GPT2LMHeadModel", "bert": "RoFormerForMaskedLM", "hybrid": "HybridGPTBERTForPreTraining"}
    assert not factory.load_model(saved_models["hybrid"]).training


def test_load_trained_model_picks_the_latest_save(saved_models, tokenizer):
    root = saved_models["gpt"].parent.parent
    # stock BERT (absolute positions), so the factory's save/load path is covered for it as well as for RoFormer
    factory = ModelFactory(load_preset("tiny", model_type="bert", encoder_position_embeddings="absolute"),
                           output_root=root, experiment_name="exp")
    newest = factory.save_model(factory.create_model(tokenizer=tokenizer, verbose=False), tokenizer,
                                checkpoint_name="zz_newest")
    try:
        loaded = factory.load_trained_model("exp")
        assert type(loaded).__name__ == "BertForMaskedLM"
        assert loaded.config._name_or_path.endswith("zz_newest")
    finally:
        import shutil

        shutil.rmtree(newest)
    with pytest.raises(FileNotFoundError, match="no saved model"):
        factory.load_trained_model("no_such_experiment")


def test_checkpoint_round_trip_restores_weights_and_optimizer(tmp_path, tokenizer):
    factory = ModelFactory(load_preset("tiny", model_type="hybrid"), output_root=tmp_path)
    model = factory.create_model(tokenizer=tokenizer, verbose=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(5, len(tokenizer), (2, 16))
    model(ids, labels=ids, task="clm").loss.backward()
    optimizer.step()
    path = factory.save_checkpoint(model, optimizer, epoch=1, step=7, metrics={"loss": 2.0})
    assert path.name == "step_7" and not any(p.suffix == ".bin" for p in path.iterdir())

    fresh = factory.create_model(tokenizer=tokenizer, verbose=False)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    state = factory.load_checkpoint(path, fresh, fresh_opt)
    assert state == {"epoch": 1, "step": 7, "metrics": {"loss": 2.0}}
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    assert fresh.decoder.wte.weight is fresh.embed_tokens.weight
    exp_avg = [s["exp_avg"] for s in optimizer.state_dict()["state"].values()]
    got = [s["exp_avg"] for s in fresh_opt.state_dict()["state"].values()]
    assert all(torch.equal(a, b) for a, b in zip(exp_avg, got)) and len(got) == len(exp_avg)


def test_corrupted_weights_and_unknown_model_type_are_named(saved_models, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(saved_models["gpt"], broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"broken/model.safetensors: cannot load weights"):
        ModelFactory("tiny").load_model(broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "model_type": "t5x"}))
    with pytest.raises(ValueError, match=r"broken/config.json: unknown model_type 't5x'"):
        read_model_type(broken)


def test_atomic_directory_keeps_the_previous_version_on_failure(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "weights").write_text("half of v2")
            raise RuntimeError("killed mid-save")
    assert (target / "weights").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary left behind
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="exists and is a file"):
        with atomic_directory(tmp_path / "file"):
            pass


def test_sigkill_during_save_leaves_the_previous_model_loadable(saved_models, tmp_path):
    """A process killed with SIGKILL in the middle of `save_model` never damages the folder it replaces."""
    import shutil
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "model"
    shutil.copytree(saved_models["gpt"], target)
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hindi_models.factory import ModelFactory\n"
        "factory = ModelFactory('tiny')\n"
        "model = factory.load_model(sys.argv[1])\n"
        "original = model.save_pretrained\n"
        "def slow_save(folder, **kw):\n"
        "    original(folder, **kw)\n"
        "    Path(sys.argv[2]).write_text('half-way')\n"
        "    time.sleep(60)\n"
        "model.save_pretrained = slow_save\n"
        "factory.save_model(model, output_dir=sys.argv[1])\n"
    )
    marker = tmp_path / "half-way"
    proc = subprocess.Popen([sys.executable, "-c", script, str(target), str(marker)])
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL and marker.exists()
    model = ModelFactory("tiny").load_model(target)  # the previous version, complete
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert json.loads((target / "metrics.json").read_text()) == {"val_loss": 1.5}
