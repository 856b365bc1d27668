"""Shared fixtures: a small tokenizer trained on the bundled sample, tiny presets, saved model folders."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HINDI_MODELS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()
MODEL_TYPES = ("gpt", "bert", "hybrid")


def pytest_configure(config):
    """Register the `slow` marker (deselect with `-m "not slow"`)."""
    config.addinivalue_line("markers", "slow: starts several processes or trains for a while")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models train fastest on one thread; two spin against each other on a busy 2-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared Hindi data not found at {SHARED_DATA} (set HINDI_MODELS_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_lines() -> list[str]:
    folder = REPO_ROOT / "hindi_models" / "data" / "sample"
    return [line.strip() for path in sorted(folder.glob("*.txt")) for line in path.open(encoding="utf-8") if line.strip()]


@pytest.fixture(scope="session")
def tokenizer(sample_lines, tmp_path_factory):
    from hindi_models.tokenizer import load_tokenizer, train_tokenizer

    folder = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(sample_lines, vocab_size=800, output_dir=folder, show_progress=False)
    return load_tokenizer(folder)


@pytest.fixture(scope="session")
def saved_models(tokenizer, tmp_path_factory) -> dict:
    """One tiny saved folder per architecture (seeded), written through the ModelFactory."""
    import torch

    from hindi_models.factory import ModelFactory
    from hindi_models.presets import load_preset

    root = tmp_path_factory.mktemp("models")
    folders = {}
    for model_type in MODEL_TYPES:
        torch.manual_seed(0)
        factory = ModelFactory(load_preset("tiny", model_type=model_type), output_root=root, experiment_name="exp")
        model = factory.create_model(tokenizer=tokenizer, verbose=False)
        folders[model_type] = factory.save_model(model, tokenizer, checkpoint_name=model_type, metrics={"val_loss": 1.5})
    return folders
