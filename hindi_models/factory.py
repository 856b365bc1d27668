"""ModelFactory: create, save, checkpoint and load every architecture of the registry, backed by `save_pretrained`.

Every folder it writes is Hub-ready (safetensors weights, config, tokenizer, model card) and is written to a
temporary sibling first, then renamed into place, so a crash mid-save never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file
from transformers import PreTrainedModel

from .architectures import architecture_of, get_architecture, saved_model_types
from .cards import render_model_card
from .files import atomic_directory, write_json
from .models import build_model, count_parameters, special_token_ids
from .presets import Preset, load_preset
from .tokenizer import check_tokenizer_matches, save_tokenizer, tokenizer_for_model

WEIGHTS = "model.safetensors"
DEFAULT_EXPERIMENT = "hindi_babylm_baseline"


def read_saved_config(path: str | os.PathLike) -> dict:
    """The `config.json` of a saved folder, with an error naming the file when it is missing, invalid or of a
    `model_type` this project does not build."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file}: no config.json (not a saved model folder)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_file}: invalid JSON ({err})") from None
    model_type = config.get("model_type")
    if model_type not in saved_model_types():
        raise ValueError(f"{config_file}: unknown model_type {model_type!r} "
                         f"(expected one of {list(saved_model_types())})")
    return config


def read_model_type(path: str | os.PathLike) -> str:
    """The `model_type` of a saved folder (see `read_saved_config`)."""
    return read_saved_config(path)["model_type"]


def unsharded_copy(model: PreTrainedModel, state_dict: dict) -> PreTrainedModel:
    """A plain model of `model`'s class and config holding `state_dict` (the full weights of a sharded model).

    Saving the sharded model itself goes wrong even with full weights: FSDP2 swaps its class for `FSDP<Name>`,
    which `save_pretrained` writes into the hybrid's `auto_map` along with copies of torch's FSDP sources as
    remote code, and FSDP1 hides the model in `.module`. Costs the main process one more copy of the weights.
    """
    from torch.distributed.fsdp import FSDPModule

    model = getattr(model, "module", model)  # FSDP1
    model_class = next(cls for cls in type(model).__mro__ if not issubclass(cls, FSDPModule))
    whole = model_class(model.config)
    whole.load_state_dict(state_dict)
    return whole


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

    def create_model(self, vocab_size: int | None = None, tokenizer=None, verbose: bool = True,
                     for_pretraining: bool = False) -> PreTrainedModel:
        """A fresh model of the preset's `model_type`; prints vocab, shape and parameter counts. `for_pretraining`:
        see `build_model`."""
        if tokenizer is not None and vocab_size is None:
            vocab_size = len(tokenizer)
        token_ids = special_token_ids(tokenizer) if tokenizer is not None else None
        model = build_model(self.config, vocab_size, token_ids, for_pretraining)
        if verbose:
            total, trainable = count_parameters(model)
            c = self.config
            print(
                f"{get_architecture(c.model_type).title}: vocab {model.config.vocab_size:,}, hidden {c.hidden_size}, "
                f"layers {c.num_layers}, heads {c.num_heads} | parameters: {total:,} total, {trainable:,} trainable"
            )
        return model

    def save_model(self, model: PreTrainedModel, tokenizer=None, checkpoint_name: str | None = None,
                   metrics: dict | None = None, output_dir: str | os.PathLike | None = None,
                   training_config: dict | None = None, card_info: dict | None = None,
                   state_dict: dict | None = None) -> Path:
        """Write a Hub-ready folder: safetensors weights, config (+ remote code for the hybrid), tokenizer,
        `metrics.json`, `training_config.json` and a model card `README.md`. Never a raw `.pt`.

        The folder is `output_dir`, else `<output_root>/<experiment_name>/<checkpoint_name or "final">`.
        For a model that FSDP shards, pass its full `state_dict` (see `training.callbacks.full_state_dict`): the
        folder is then written from an ordinary copy of the model holding those weights.
        """
        target = Path(output_dir) if output_dir else self.experiment_dir / (checkpoint_name or "final")
        if state_dict is not None:
            model = unsharded_copy(model, state_dict)
        if tokenizer is not None:
            check_tokenizer_matches(model.config, tokenizer)
        with atomic_directory(target) as tmp:
            model.save_pretrained(tmp)
            if tokenizer is not None:
                save_tokenizer(self.tokenizer_for(model, tokenizer), tmp)
            write_json(tmp / "metrics.json", metrics or {})
            write_json(tmp / "training_config.json", {"preset": self.config.to_dict(), **(training_config or {})})
            card = render_model_card(model.config, metrics=metrics, parameters=count_parameters(model)[0],
                                     **(card_info or {}))
            card.save(tmp / "README.md")
        return target

    @staticmethod
    def tokenizer_for(model: PreTrainedModel, tokenizer):
        """The tokenizer a saved folder of `model` carries: its architecture's post-processor (causal models get
        `[CLS] text`, masked ones `[CLS] text [SEP]`) and the model's number of positions as `model_max_length`."""
        found = architecture_of(model.config)
        if found is None or not hasattr(tokenizer, "backend_tokenizer"):
            return tokenizer
        return tokenizer_for_model(tokenizer, found[0].tokenizer_template, model.config.max_position_embeddings)

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
        """Load any architecture of the registry from a saved folder, in eval mode, with its `loader` Auto class.

        GPT loads as `GPT2LMHeadModel`, BERT as `BertForMaskedLM` (`RoFormerForMaskedLM` with rotary positions), the
        hybrid as `HybridGPTBERTForPreTraining` (both heads).
        Extra keyword arguments (e.g. `dtype=torch.bfloat16`) go to `from_pretrained`.
        """
        loader = getattr(transformers, architecture_of(read_saved_config(path))[0].loader)
        weights = Path(path) / WEIGHTS
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing weights file")
        try:
            model = loader.from_pretrained(path, **kwargs)
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
