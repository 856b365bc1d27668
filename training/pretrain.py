"""Pretrain one architecture from a YAML preset with `transformers.Trainer` (runs under `accelerate launch`).

    hindi-lm pretrain --model-type bert --preset tiny --output-dir runs/bert
    accelerate launch --num_processes 2 --cpu -m training.pretrain --model-type gpt --output-dir runs/gpt

Layout: `--output-dir` receives the final Hub-ready model folder (written atomically by the ModelFactory);
Trainer checkpoints, TensorBoard logs, `log.jsonl` and BabyLM `chck_{N}M` snapshots go to `--checkpoint-dir`
(default: `<output-dir>_checkpoints`), so the model folder holds only what belongs on the Hub.

A run is five stages, each a function below: `start_run` (settings → preset, hyperparameters, folders) →
`prepare_data` (corpus, tokenizer, packed blocks) → the model (`ModelFactory.create_model`) → `build_trainer` →
`train` → `finish` (validation losses, save, push).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import PartialState
from datasets import Dataset
from transformers import PreTrainedModel, Trainer, TrainingArguments, set_seed
from transformers.utils import logging as hf_logging

from hindi_models.architectures import Architecture, architecture_names, architecture_of, get_architecture
from hindi_models.dropout import use_cpu_dropout
from hindi_models.factory import ModelFactory
from hindi_models.files import check_output_dir, check_writable, write_json
from hindi_models.presets import Preset, TrainingHyperparameters, load_preset, split_overrides
from hindi_models.tokenizer import load_tokenizer, train_tokenizer
from training import options
from training.callbacks import (
    VALIDATION_EPOCH,
    CheckpointCompleteCallback,
    JsonLogCallback,
    MaskingEpochCallback,
    StepTimeCallback,
    WordCheckpointCallback,
    full_state_dict,
    last_complete_checkpoint,
    truncate_log,
)
from training.allocator import ALLOCATORS, HeapTrimCallback, check_allocator, training_allocator
from training.collators import make_collator
from training.data import describe_corpus, load_corpus
from training.packing import tokenize_and_pack

_HYPERPARAMETER_KEYS = tuple(f.name for f in dataclasses.fields(TrainingHyperparameters))


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class PretrainSettings:
    """What one pretraining run is told (the `hindi-lm pretrain` flags). Hyperparameters not given in
    `hyperparameters` come from the preset's `training:` section, then `TrainingHyperparameters`' defaults."""

    model_type: str = "gpt"
    preset: str | Preset = "tiny"
    corpus: object = None  # see `training.data.load_corpus`; None = the bundled sample
    validation_corpus: object = None
    output_dir: Path = Path("runs/model")
    checkpoint_dir: Path | None = None  # default: <output_dir>_checkpoints
    tokenizer_path: Path | None = None  # default: train one on the corpus
    word_budget: int | None = None  # run length: words, else max_steps, else epochs (default 1)
    max_steps: int | None = None
    epochs: float | None = None
    seed: int = 42
    precision: str = "auto"
    encoder_position_embeddings: str | None = None  # overrides the preset's
    preset_overrides: dict = field(default_factory=dict)  # preset keys (dropout, vocab_size, ...) for this run
    hyperparameters: dict = field(default_factory=dict)  # TrainingHyperparameters keys, override the preset
    eval_steps: int | None = None
    save_steps: int | None = None
    logging_steps: int | None = None
    save_total_limit: int = 2
    max_eval_blocks: int = 256
    validation_fraction: float | None = None  # default: 5% of the bundled sample, 1% of other corpora
    checkpoint_every_words: int | None = None
    checkpoint_max_words: int = 10_000_000
    gradient_checkpointing: bool = False
    torch_compile: bool = False
    stock_dropout: bool = False  # True: torch's own dropout masks on CPU instead of `hindi_models.dropout`'s
    allocator: str = ALLOCATORS[0]  # on CPU: "mimalloc", "glibc-keep" or "stock" (`training.allocator`)
    resume: bool = False
    overwrite: bool = False
    num_proc: int | None = None
    dataloader_num_workers: int = 0
    report_to: str = "tensorboard"
    disable_tqdm: bool | None = None
    push_to_hub: str | None = None
    hub_private: bool = False
    hub_revision: str | None = None

    @property
    def cpu_dropout_masks(self) -> bool:
        """Whether the model draws `hindi_models.dropout`'s masks: not with `stock_dropout`, nor with
        `torch_compile`, whose inductor kernels draw their own fused masks."""
        return not (self.stock_dropout or self.torch_compile)

    @classmethod
    def from_kwargs(cls, **kwargs) -> "PretrainSettings":
        """Settings from keyword arguments, where hyperparameter keys (learning_rate, ...) may stand at the top."""
        hyperparameters = {**kwargs.pop("hyperparameters", {}),
                           **{k: kwargs.pop(k) for k in list(kwargs) if k in _HYPERPARAMETER_KEYS}}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"pretrain() got unknown settings {unknown} (known: {sorted(known)} and "
                            f"{', '.join(_HYPERPARAMETER_KEYS)})")
        return cls(**kwargs, hyperparameters=hyperparameters)


@dataclass
class Run:
    """A run being prepared: its settings resolved against the preset and the folders on disk."""

    settings: PretrainSettings
    preset: Preset
    arch: Architecture
    hparams: TrainingHyperparameters
    output_dir: Path
    checkpoint_dir: Path
    resume_from: Path | None
    state: PartialState
    factory: ModelFactory
    precision: str  # resolved: fp32, bf16 or fp16
    started: float
    # Set by `build_trainer` once the world size is known.
    tokens_per_step: int = 0
    planned_steps: int = 0
    allocator: str = "stock"  # set by `pretrain`: the allocator the training ran with (`training_allocator`)


@dataclass
class PreparedData:
    """The tokenizer and packed blocks a run trains and validates on."""

    tokenizer: object
    train_blocks: Dataset
    eval_blocks: Dataset
    stats: dict
    tokens_per_word: float


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX), where bf16 autocast pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """`auto` → bf16 on GPUs and CPUs that support it natively, else fp32 (fp16 only when asked)."""
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_supports_bf16() else "fp32"


def check_settings(settings: PretrainSettings, hparams: TrainingHyperparameters) -> None:
    """Refuse run lengths and hyperparameters that cannot train, before any data or tokenizer work."""
    positive = {"word_budget": settings.word_budget, "max_steps": settings.max_steps, "epochs": settings.epochs,
                "batch_size": hparams.batch_size, "learning_rate": hparams.learning_rate,
                "gradient_accumulation_steps": hparams.gradient_accumulation_steps}
    for name, value in positive.items():
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if not 0 < hparams.mlm_probability < 1:
        raise ValueError(f"--mlm-probability must be between 0 and 1, got {hparams.mlm_probability}")
    if not 0 <= hparams.causal_fraction <= 1:
        raise ValueError(f"--causal-fraction must be between 0 and 1, got {hparams.causal_fraction}")
    check_allocator(settings.allocator)


def start_run(settings: PretrainSettings) -> Run:
    """Resolve the preset and hyperparameters, check the output folder, find the checkpoint to resume from."""
    arch = get_architecture(settings.model_type)
    preset = settings.preset if isinstance(settings.preset, Preset) else load_preset(settings.preset)
    preset = preset.with_overrides(model_type=arch.name,
                                   encoder_position_embeddings=settings.encoder_position_embeddings,
                                   **settings.preset_overrides)
    hparams = preset.hyperparameters(arch.name, **settings.hyperparameters)
    check_settings(settings, hparams)
    output_dir = Path(settings.output_dir)
    checkpoint_dir = (Path(settings.checkpoint_dir) if settings.checkpoint_dir
                      else output_dir.with_name(output_dir.name + "_checkpoints"))
    # cpu=True on CPU-only machines: otherwise a 2-process gloo launch looks like one process to every rank
    # until Trainer starts, and each rank trains and writes the tokenizer.
    state = PartialState(cpu=not torch.cuda.is_available())
    check_output_dir(output_dir, settings.overwrite, settings.resume)
    check_writable(checkpoint_dir)
    resume_from = last_complete_checkpoint(checkpoint_dir) if settings.resume and checkpoint_dir.is_dir() else None
    if settings.resume and resume_from is None:
        raise FileNotFoundError(f"{checkpoint_dir}: --resume given but no complete checkpoint-N folder found there")
    factory = ModelFactory(preset, output_root=output_dir.parent, experiment_name=output_dir.name)
    return Run(settings, preset, arch, hparams, output_dir, checkpoint_dir, resume_from, state, factory,
               resolve_precision(settings.precision), time.time())


def prepare_data(run: Run) -> PreparedData:
    """Load and split the corpus, train (or load) the tokenizer, tokenize and pack. Rank 0 prepares and caches,
    the other ranks read what it wrote."""
    s, preset = run.settings, run.preset
    with run.state.main_process_first():
        fraction = s.validation_fraction if s.validation_fraction is not None else (0.05 if s.corpus is None else 0.01)
        splits = load_corpus(s.corpus, validation_sources=s.validation_corpus, validation_fraction=fraction,
                             num_proc=s.num_proc)
        tokenizer_dir = run.checkpoint_dir / "tokenizer"
        if s.tokenizer_path is not None:
            tokenizer = load_tokenizer(s.tokenizer_path)
        elif (s.resume and tokenizer_dir.is_dir()) or not run.state.is_main_process:
            tokenizer = load_tokenizer(tokenizer_dir)
        else:
            tokenizer = train_tokenizer(splits["train"]["text"], vocab_size=preset.vocab_size,
                                        output_dir=tokenizer_dir, held_out=splits["validation"]["text"])
        if len(tokenizer) > preset.vocab_size and s.tokenizer_path is None:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than the preset's vocab_size "
                             f"{preset.vocab_size}")
        if preset.max_length > tokenizer.model_max_length:
            tokenizer.model_max_length = preset.max_length
        packed, stats = tokenize_and_pack(splits, tokenizer, block_size=preset.max_length, num_proc=s.num_proc)
    train_blocks = packed["train"]
    if len(train_blocks) == 0:
        raise ValueError(f"corpus {s.corpus or 'bundled sample'}: fewer tokens than one block of {preset.max_length}")
    eval_blocks = packed["validation"].select(range(min(s.max_eval_blocks, len(packed["validation"]))))
    tokens_per_word = stats["train"]["n_tokens"] / max(stats["train"]["n_words"], 1)
    return PreparedData(tokenizer, train_blocks, eval_blocks, stats, tokens_per_word)


def _no_bars(disable_tqdm: bool | None) -> bool:
    """Trainer's `disable_tqdm`: as set, else off wherever progress bars are switched off (a log file)."""
    return disable_tqdm if disable_tqdm is not None else not hf_logging.is_progress_bar_enabled()


def training_arguments(run: Run) -> TrainingArguments:
    """Trainer's arguments from the run's hyperparameters; steps and schedule are set by `build_trainer`."""
    s, h = run.settings, run.hparams
    return TrainingArguments(
        output_dir=str(run.checkpoint_dir), num_train_epochs=s.epochs or 1.0,
        per_device_train_batch_size=h.batch_size, per_device_eval_batch_size=h.batch_size,
        gradient_accumulation_steps=h.gradient_accumulation_steps, learning_rate=h.learning_rate,
        warmup_steps=h.warmup_ratio, weight_decay=h.weight_decay, lr_scheduler_type=h.lr_scheduler_type,
        adam_beta1=h.adam_beta1, adam_beta2=h.adam_beta2, max_grad_norm=h.max_grad_norm,
        bf16=run.precision == "bf16", fp16=run.precision == "fp16", use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=s.gradient_checkpointing, torch_compile=s.torch_compile,
        eval_strategy="steps", save_strategy="steps",
        save_total_limit=s.save_total_limit, logging_nan_inf_filter=False,
        report_to=[] if s.report_to in ("none", "") else [s.report_to], seed=s.seed, data_seed=s.seed,
        dataloader_num_workers=s.dataloader_num_workers, disable_tqdm=_no_bars(s.disable_tqdm),
        remove_unused_columns=False,
    )


def training_model(run: Run, data: PreparedData, verbose: bool | None = None) -> PreTrainedModel:
    """A fresh model of the run's architecture with its pretraining forward and, where the settings ask for them
    (`PretrainSettings.cpu_dropout_masks`), the cheaper CPU dropout masks."""
    verbose = run.state.is_main_process if verbose is None else verbose
    model = run.factory.create_model(tokenizer=data.tokenizer, verbose=verbose, for_pretraining=True)
    if run.settings.cpu_dropout_masks:
        use_cpu_dropout(model)
    return model


def build_trainer(run: Run, data: PreparedData, model) -> Trainer:
    """Trainer with the architecture's collator, the run length in steps, and the run's callbacks."""
    s, h = run.settings, run.hparams
    args = training_arguments(run)
    # The world size is known once TrainingArguments has set up the distributed state.
    global_batch = h.batch_size * h.gradient_accumulation_steps * args.world_size
    run.tokens_per_step = tokens_per_step = global_batch * run.preset.max_length
    max_steps = s.max_steps
    if s.word_budget:
        max_steps = math.ceil(s.word_budget * data.tokens_per_word / tokens_per_step)
    args.max_steps = max_steps or -1
    if not max_steps:
        max_steps = math.ceil(len(data.train_blocks) / global_batch * (s.epochs or 1.0))
    run.planned_steps = max_steps
    args.eval_steps = s.eval_steps or max(1, max_steps // 10)
    args.save_steps = s.save_steps or args.eval_steps
    args.logging_steps = s.logging_steps or max(1, min(50, args.eval_steps // 5))
    collator = make_collator(run.arch.name, data.tokenizer, mlm_probability=h.mlm_probability, seed=s.seed,
                             causal_fraction=h.causal_fraction)
    if run.state.is_main_process:
        run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    json_log = JsonLogCallback(run.checkpoint_dir / "log.jsonl", data.tokens_per_word, tokens_per_step)
    if run.resume_from is not None and run.state.is_main_process:
        truncate_log(json_log.path, int(run.resume_from.name.rsplit("-", 1)[1]))
    callbacks = [json_log, CheckpointCompleteCallback(), StepTimeCallback(tokens_per_step)]
    if run.allocator == "glibc-keep":
        callbacks.append(HeapTrimCallback())
    if hasattr(collator, "epoch"):
        callbacks.append(MaskingEpochCallback(collator))
    if s.checkpoint_every_words:
        callbacks.append(WordCheckpointCallback(run.factory, run.checkpoint_dir, s.checkpoint_every_words,
                                                s.checkpoint_max_words, data.tokens_per_word, tokens_per_step,
                                                data.tokenizer))
    return Trainer(model=model, args=args, data_collator=collator, train_dataset=data.train_blocks,
                   eval_dataset=data.eval_blocks, processing_class=data.tokenizer, callbacks=callbacks)


def _callback(trainer: Trainer, kind: type):
    return next((cb for cb in trainer.callback_handler.callbacks if isinstance(cb, kind)), None)


def train(run: Run, trainer: Trainer):
    """Train (resuming where asked); returns (train output, seconds). A NaN/inf loss raises, naming the step."""
    started = time.time()
    result = trainer.train(resume_from_checkpoint=str(run.resume_from) if run.resume_from else None)
    seconds = time.time() - started
    json_log = _callback(trainer, JsonLogCallback)
    if json_log.diverged_at is not None:
        step, value = json_log.diverged_at
        last = last_complete_checkpoint(run.checkpoint_dir) if run.checkpoint_dir.is_dir() else None
        raise TrainingDivergedError(f"loss became {value} at step {step}; training stopped. "
                                    f"Last good checkpoint: {last or 'none'}")
    return result, seconds


@torch.no_grad()
def validation_losses(model, dataset, collator, batch_size: int = 16, seed: int = 0) -> dict:
    """Token-mean validation losses per objective: `clm_loss` (causal) and `mlm_loss` (masked), both for the
    hybrid and GPT-BERT, masking with a fixed seed so every architecture is scored on the same masks."""
    was_training, rng = model.training, torch.random.get_rng_state()
    model.eval()
    torch.manual_seed(seed)
    # Seeded collators draw masks from (seed, epoch, tokens): score every model on the same epoch's masks.
    training_epoch = getattr(collator, "epoch", None)
    if training_epoch is not None:
        collator.epoch = VALIDATION_EPOCH
    device = next(model.parameters()).device
    kind = architecture_of(model.config)[0].collator
    # GPT-BERT trains on one objective per example; here every block is scored with both, as the hybrid's are.
    collate = collator.both_objectives if kind == "causal|masked" else collator
    totals: dict[str, list[float]] = {}
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        # Causal labels are shifted inside the model, so the first position is never predicted.
        if kind == "causal":
            parts = {"clm_loss": (out.loss, batch["labels"][:, 1:])}
        elif kind == "masked":
            parts = {"mlm_loss": (out.loss, batch["labels"])}
        elif kind == "causal|masked":  # GPT-BERT: causal rows, then masked rows, labels shifted in both
            causal = batch["is_causal"]
            parts = {"clm_loss": (out.clm_loss, batch["labels"][causal][:, 1:]),
                     "mlm_loss": (out.mlm_loss, batch["labels"][~causal][:, 1:])}
        else:  # causal+masked: the hybrid's two partial losses
            parts = {"clm_loss": (out.clm_loss, batch["labels"][:, 1:]),
                     "mlm_loss": (out.mlm_loss, batch["mlm_labels"])}
        for name, (loss, labels) in parts.items():
            n = int((labels != -100).sum())
            total = totals.setdefault(name, [0.0, 0])
            total[0] += loss.item() * n
            total[1] += n
    torch.random.set_rng_state(rng)
    model.train(was_training)
    if training_epoch is not None:
        collator.epoch = training_epoch
    return {name: loss_sum / n for name, (loss_sum, n) in totals.items() if n}


def finish(run: Run, data: PreparedData, trainer: Trainer, result, train_seconds: float) -> dict:
    """Validation losses, the run's metrics, the Hub-ready folder (and its push); returns the metrics."""
    s, preset, h = run.settings, run.preset, run.hparams
    steps_run, tokens_per_step, model = trainer.state.global_step, run.tokens_per_step, trainer.model
    metrics = {
        "model_type": run.arch.name,
        "preset": preset.name,
        "objective": run.arch.describe_objective(h.mlm_probability, preset.mlm_loss_weight, preset.clm_loss_weight,
                                                 h.causal_fraction),
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps_run,
        "tokens_seen": steps_run * tokens_per_step,
        "words_seen": round(steps_run * tokens_per_step / data.tokens_per_word),
        "train_seconds": round(train_seconds, 1),
        "train_tokens_per_second": round(result.metrics.get("train_samples_per_second", 0) * preset.max_length, 1),
        "train_loss": result.metrics.get("train_loss"),
        "speed": _callback(trainer, StepTimeCallback).summary(),
        "precision": run.precision,
        "allocator": run.allocator,
        "num_processes": trainer.args.world_size,
        "tokens_per_word": round(data.tokens_per_word, 4),
        "corpus": dict(data.stats),
        "hyperparameters": h.as_dict(),
    }
    losses = validation_losses(model, data.eval_blocks, trainer.data_collator)
    metrics.update({f"validation_{k}": v for k, v in losses.items()})
    weights = full_state_dict(model)  # on every process: under FSDP, rank 0 alone cannot gather the shards
    if run.state.is_main_process:
        budget = f"{metrics['words_seen']:,} words ({metrics['tokens_seen']:,} tokens, {steps_run} steps)"
        folder = run.factory.save_model(
            model, data.tokenizer, output_dir=run.output_dir, metrics=metrics, state_dict=weights,
            training_config={"model_type": run.arch.name, "hyperparameters": h.as_dict(), "seed": s.seed,
                             "precision": run.precision, "word_budget": s.word_budget, "max_steps": run.planned_steps,
                             "corpus": str(s.corpus or "bundled sample"),
                             "cpu_dropout_masks": s.cpu_dropout_masks, "allocator": run.allocator},
            card_info={"training_data": describe_corpus(s.corpus), "training_budget": budget,
                       "hyperparameters": {**h.as_dict(), "seed": s.seed, "precision": run.precision}},
        )
        write_json(run.checkpoint_dir / "metrics.json", metrics)
        if s.push_to_hub:
            snapshots = _callback(trainer, WordCheckpointCallback)
            run.factory.push_to_hub(folder, s.push_to_hub, private=s.hub_private, revision=s.hub_revision,
                                    branches=snapshots.saved if snapshots else [])
    run.state.wait_for_everyone()
    metrics["wall_seconds"] = round(time.time() - run.started, 1)
    return metrics


def pretrain(settings: PretrainSettings | None = None, /, **kwargs) -> dict:
    """Pretrain one architecture and save a Hub-ready folder; returns the run's metrics.

    Pass a `PretrainSettings`, or its fields as keyword arguments (hyperparameters such as `learning_rate=` or
    `batch_size=` may stand among them). The run length is `word_budget` words (converted to steps with the
    corpus' measured tokens per word), else `max_steps`, else `epochs` (default 1 epoch).
    """
    settings = settings or PretrainSettings.from_kwargs(**kwargs)
    run = start_run(settings)
    set_seed(settings.seed)
    data = prepare_data(run)
    with training_allocator(settings.allocator) as run.allocator:
        model = training_model(run, data)
        trainer = build_trainer(run, data, model)
        result, seconds = train(run, trainer)
        return finish(run, data, trainer, result, seconds)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `hindi-lm pretrain` options."""
    parser.add_argument("--model-type", choices=architecture_names(), default="gpt",
                        help="an architecture of hindi_models/architectures.py")
    options.add_preset_argument(parser)
    options.add_corpus_argument(parser)
    parser.add_argument("--validation-corpus", nargs="+", default=None,
                        help="held-out text in --corpus's forms (default: 5%% of the bundled sample or 1%% of "
                             "another corpus, split off by line)")
    parser.add_argument("--output-dir", required=True, type=Path, help="folder of the final model (must be new, "
                        "unless --overwrite or --resume)")
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="Trainer checkpoints and the tokenizer (default: <output-dir>_checkpoints)")
    parser.add_argument("--tokenizer", dest="tokenizer_path", default=None,
                        help="use this tokenizer folder (default: train one on the corpus)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--max-steps", type=int, help="optimizer steps to train (default: one epoch)")
    budget.add_argument("--epochs", type=float, help="passes over the corpus (default: 1)")
    budget.add_argument("--word-budget", type=float,
                        help="words to train on, e.g. 1e6, repeating the corpus if needed (default: one epoch)")
    preset_default = "(default: the preset's training value)"
    parser.add_argument("--batch-size", type=int, help=f"sequences per device step {preset_default}")
    parser.add_argument("--gradient-accumulation-steps", type=int, help=f"steps per optimizer update {preset_default}")
    parser.add_argument("--learning-rate", type=float, help=f"peak learning rate {preset_default}")
    parser.add_argument("--warmup-ratio", type=float, help=f"share of steps spent warming up {preset_default}")
    options.add_mlm_probability_argument(parser)
    options.add_causal_fraction_argument(parser)
    options.add_seed_argument(parser)
    options.add_position_argument(parser)
    options.add_precision_argument(parser)
    options.add_set_argument(parser)
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations to save memory")
    parser.add_argument("--torch-compile", action="store_true",
                        help="compile the model with torch.compile (inductor) through Trainer; at mini on 2 CPU cores "
                             "GPT's steps are 1.25x faster after 16-90 s of compiling, the others gain "
                             "little or lose (BENCHMARKS.md)")
    parser.add_argument("--stock-dropout", action="store_true",
                        help="draw dropout masks with torch's own kernels on CPU (default: hindi_models.dropout's "
                             "cheaper masks: same keep probability, other random draws; at small they make a step "
                             "1.13-1.40x shorter, BENCHMARKS.md)")
    options.add_allocator_argument(parser)
    parser.add_argument("--eval-steps", type=int, help="validate every N steps (default: a tenth of the run)")
    parser.add_argument("--save-steps", type=int, help="checkpoint every N steps (default: --eval-steps)")
    parser.add_argument("--logging-steps", type=int,
                        help="log the loss every N steps (default: a fifth of --eval-steps, at most 50)")
    parser.add_argument("--checkpoint-every-words", type=float,
                        help="BabyLM snapshots chck_{N}M, e.g. 1e6 (default: none)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run in --output-dir")
    parser.add_argument("--num-proc", type=int, default=None, help="processes for tokenization (default: one)")
    parser.add_argument("--report-to", default="tensorboard", help="tensorboard, trackio or none")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="push the final folder to this Hub repo "
                        "(default: no push)")
    parser.add_argument("--hub-private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--hub-revision", help="Hub branch to push to (default: main)")


def run(args: argparse.Namespace) -> int:
    """Run `hindi-lm pretrain` from parsed arguments; prints the metrics as JSON."""
    preset_overrides, set_hyperparameters = split_overrides(options.parse_overrides(args.overrides))
    flags = {key: getattr(args, key, None) for key in _HYPERPARAMETER_KEYS}
    hyperparameters = {**set_hyperparameters, **{k: v for k, v in flags.items() if v is not None}}
    settings = PretrainSettings(
        model_type=args.model_type, preset=args.preset, corpus=options.single(args.corpus),
        validation_corpus=options.single(args.validation_corpus), output_dir=args.output_dir,
        checkpoint_dir=args.checkpoint_dir, tokenizer_path=args.tokenizer_path, max_steps=args.max_steps,
        epochs=args.epochs, word_budget=int(args.word_budget) if args.word_budget else None, seed=args.seed,
        precision=args.precision, eval_steps=args.eval_steps, save_steps=args.save_steps,
        logging_steps=args.logging_steps, gradient_checkpointing=args.gradient_checkpointing,
        torch_compile=args.torch_compile, stock_dropout=args.stock_dropout, allocator=args.allocator,
        checkpoint_every_words=int(args.checkpoint_every_words) if args.checkpoint_every_words else None,
        resume=args.resume, overwrite=args.overwrite, num_proc=args.num_proc, report_to=args.report_to,
        push_to_hub=args.push_to_hub, hub_private=args.hub_private, hub_revision=args.hub_revision,
        encoder_position_embeddings=args.encoder_position_embeddings,
        hyperparameters=hyperparameters, preset_overrides=preset_overrides,
    )
    metrics = pretrain(settings)
    if PartialState().is_main_process:
        summary = {k: v for k, v in metrics.items() if k not in ("corpus", "hyperparameters")}
        print(json.dumps(summary, indent=2))
    return 0


def main(argv=None) -> int:
    """`python -m training.pretrain` (e.g. under `accelerate launch`): the same as `hindi-lm pretrain`."""
    return options.standalone_main("pretrain", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
