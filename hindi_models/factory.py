"""ModelFactory: create, save, checkpoint and load the three architectures, backed by `save_pretrained`.

Every folder it writes is Hub-ready (safetensors weights, config, tokenizer, model card) and is written to a
temporary sibling first, then renamed into place, so a crash mid-save never leaves a half-written model.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, PreTrainedModel

from .cards import render_model_card
from .models import build_model, count_parameters, special_token_ids
from .presets import ARCHITECTURE_NAMES, Preset, load_preset

# model_type in config.json → the Auto class that loads the whole pretrained model.
LOADERS = {"gpt2": AutoModelForCausalLM, "bert": AutoModelForMaskedLM, "roformer": AutoModelForMaskedLM,
           "hybrid_gpt_bert": AutoModel}
WEIGHTS = "model.safetensors"
DEFAULT_EXPERIMENT = "hindi_babylm_baseline"


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike):
    """Yield a temporary sibling of `target` to fill; on success swap it into place, on error delete it.

    The previous `target` stays complete until the new one is: it is moved aside, the new folder renamed in,
    and only then is the old one removed.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target}: output path exists and is a file, not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write through a temporary sibling and `os.replace`, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, data) -> None:
    """Write JSON atomically (see `write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def check_tokenizer_matches(model_config, tokenizer, where: str = "model") -> None:
    """Refuse a tokenizer with more tokens than the model's embeddings, or special-token ids that disagree."""
    if len(tokenizer) > model_config.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens but the {where}'s embeddings hold only "
                         f"{model_config.vocab_size} (vocab_size)")
    for name in ("pad", "bos", "eos"):
        ours, theirs = getattr(model_config, f"{name}_token_id", None), getattr(tokenizer, f"{name}_token_id", None)
        if ours is not None and theirs is not None and ours != theirs:
            raise ValueError(f"special token ids disagree: tokenizer {name}_token_id={theirs}, "
                             f"{where} config {name}_token_id={ours}")


def read_model_type(path: str | os.PathLike) -> str:
    """The `model_type` of a saved folder, with an error naming the file when it is missing or unknown."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file}: no config.json (not a saved model folder)")
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_file}: invalid JSON ({err})") from None
    if model_type not in LOADERS:
        raise ValueError(f"{config_file}: unknown model_type {model_type!r} (expected one of {sorted(LOADERS)})")
    return model_type


class ModelFactory:
    """Create, save, checkpoint and load models of one experiment.

    Args:
        config: a `Preset`, or a preset name / YAML path (see `hindi_models.presets`).
        output_root: folder holding one subfolder per experiment.
        experiment_name: this experiment's subfolder (default `hindi_babylm_baseline`).
    """

    def __init__(self, config: Preset | str | os.PathLike = "tiny", output_root: str | os.PathLike = "outputs",
                 experiment_name: str = DEFAULT_EXPERIMENT):
        self.config = config if isinstance(config, Preset) else load_preset(config)
        self.output_root = Path(output_root)
        self.experiment_name = experiment_name

    @property
    def experiment_dir(self) -> Path:
        return self.output_root / self.experiment_name

    def create_model(self, vocab_size: int | None = None, tokenizer=None, verbose: bool = True) -> PreTrainedModel:
        """A fresh model of the preset's `model_type`; prints vocab, shape and parameter counts."""
        if tokenizer is not None and vocab_size is None:
            vocab_size = len(tokenizer)
        token_ids = special_token_ids(tokenizer) if tokenizer is not None else None
        model = build_model(self.config, vocab_size, token_ids)
        if verbose:
            total, trainable = count_parameters(model)
            c = self.config
            print(
                f"{ARCHITECTURE_NAMES[c.model_type]}: vocab {model.config.vocab_size:,}, hidden {c.hidden_size}, "
                f"layers {c.num_layers}, heads {c.num_heads} | parameters: {total:,} total, {trainable:,} trainable"
            )
        return model

    def save_model(self, model: PreTrainedModel, tokenizer=None, checkpoint_name: str | None = None,
                   metrics: dict | None = None, output_dir: str | os.PathLike | None = None,
                   training_config: dict | None = None, card_info: dict | None = None) -> Path:
        """Write a Hub-ready folder: safetensors weights, config (+ remote code for the hybrid), tokenizer,
        `metrics.json`, `training_config.json` and a model card `README.md`. Never a raw `.pt`.

        The folder is `output_dir`, else `<output_root>/<experiment_name>/<checkpoint_name or "final">`.
        """
        target = Path(output_dir) if output_dir else self.experiment_dir / (checkpoint_name or "final")
        if tokenizer is not None:
            check_tokenizer_matches(model.config, tokenizer)
        with atomic_directory(target) as tmp:
            model.save_pretrained(tmp)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            write_json(tmp / "metrics.json", metrics or {})
            write_json(tmp / "training_config.json", {"preset": self.config.to_dict(), **(training_config or {})})
            card = render_model_card(model.config, metrics=metrics, parameters=count_parameters(model)[0],
                                     **(card_info or {}))
            card.save(tmp / "README.md")
        return target

    def save_checkpoint(self, model: PreTrainedModel, optimizer: torch.optim.Optimizer | None, epoch: int,
                        step: int, metrics: dict | None = None, scheduler=None) -> Path:
        """A resumable checkpoint `<experiment>/checkpoints/step_<step>`: weights in safetensors (via
        `save_pretrained`), optimizer/scheduler state as tensors-only `torch.save` files, and `state.json`."""
        target = self.experiment_dir / "checkpoints" / f"step_{step}"
        with atomic_directory(target) as tmp:
            model.save_pretrained(tmp)
            if optimizer is not None:
                torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            if scheduler is not None:
                torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
            write_json(tmp / "state.json", {"epoch": epoch, "step": step, "metrics": metrics or {}})
        return target

    def load_checkpoint(self, path: str | os.PathLike, model: PreTrainedModel, optimizer=None, scheduler=None) -> dict:
        """Restore a `save_checkpoint` folder into `model` (and optimizer/scheduler); returns its `state.json`.

        Optimizer and scheduler files are read with `weights_only=True`: no pickled code is ever executed.
        """
        path = Path(path)
        state_file = path / "state.json"
        if not state_file.is_file():
            raise FileNotFoundError(f"{state_file}: not a checkpoint folder")
        state_dict = load_file(str(path / WEIGHTS))
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
        missing = [k for k in missing if k not in getattr(model, "all_tied_weights_keys", {})]
        if missing or unexpected:
            raise ValueError(f"{path / WEIGHTS}: does not match the model (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
        model.tie_weights()
        if optimizer is not None:
            optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
        if scheduler is not None:
            scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
        return json.loads(state_file.read_text(encoding="utf-8"))

    def load_model(self, path: str | os.PathLike, **kwargs) -> PreTrainedModel:
        """Load any of the three architectures from a saved folder, in eval mode.

        GPT loads as `GPT2LMHeadModel`, BERT as `BertForMaskedLM` (`RoFormerForMaskedLM` with rotary positions), the
        hybrid as `HybridGPTBERTModel` (both heads).
        Extra keyword arguments (e.g. `dtype=torch.bfloat16`) go to `from_pretrained`.
        """
        model_type = read_model_type(path)
        weights = Path(path) / WEIGHTS
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing weights file")
        try:
            model = LOADERS[model_type].from_pretrained(path, **kwargs)
        except Exception as err:  # surface corrupted/truncated safetensors with the file name
            raise ValueError(f"{weights}: cannot load weights ({type(err).__name__}: {err})") from err
        return model.eval()

    def load_trained_model(self, experiment_name: str | None = None, **kwargs) -> PreTrainedModel:
        """The latest model saved by `save_model` under `<output_root>/<experiment_name>/` (newest weights)."""
        root = self.output_root / (experiment_name or self.experiment_name)
        candidates = [p.parent for p in root.glob(f"*/{WEIGHTS}") if not p.parent.name.startswith(".")]
        if not candidates:
            raise FileNotFoundError(f"{root}: no saved model (no */{WEIGHTS})")
        latest = max(candidates, key=lambda folder: (folder / WEIGHTS).stat().st_mtime_ns)
        return self.load_model(latest, **kwargs)

    def push_to_hub(self, folder: str | os.PathLike, repo_id: str, private: bool = False,
                    revision: str | None = None, branches: list | tuple = (), token: str | None = None) -> list:
        """Upload a saved folder to the Hub (`revision` = branch, created if missing), and each folder in
        `branches` (e.g. BabyLM `chck_1M` snapshots) as a branch named after it. Returns the commit infos."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commits = []
        for path, branch in [(Path(folder), revision), *((Path(b), Path(b).name) for b in branches)]:
            if branch:
                api.create_branch(repo_id, branch=branch, exist_ok=True, repo_type="model")
            commits.append(api.upload_folder(repo_id=repo_id, folder_path=str(path), revision=branch,
                                             repo_type="model",
                                             commit_message=f"Upload {path.name} with hindi-models"))
        return commits
