"""Pretrain a GPT, BERT or hybrid from a YAML preset with `transformers.Trainer` (runs under `accelerate launch`).

    hindi-lm pretrain --model-type bert --preset tiny --output-dir runs/bert
    accelerate launch --num_processes 2 --cpu -m training.pretrain --model-type gpt --output-dir runs/gpt

Layout: `--output-dir` receives the final Hub-ready model folder (written atomically by the ModelFactory);
Trainer checkpoints, TensorBoard logs, `log.jsonl` and BabyLM `chck_{N}M` snapshots go to `--checkpoint-dir`
(default: `<output-dir>_checkpoints`), so the model folder holds only what belongs on the Hub.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from accelerate import PartialState
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

from hindi_models.evaluation import detect_kinds
from hindi_models.factory import ModelFactory, write_json
from hindi_models.presets import ENCODER_POSITION_EMBEDDINGS, MODEL_TYPES, Preset, PresetError, load_preset
from hindi_models.tokenizer import load_tokenizer, train_tokenizer
from training.collators import make_collator
from training.data import describe_corpus, load_corpus, tokenize_and_pack

# Keys a preset's `training:` section may set, with their types; command-line flags override them.
TRAINING_KEYS = {
    "learning_rate": float,
    "warmup_ratio": float,
    "weight_decay": float,
    "lr_scheduler_type": str,
    "adam_beta1": float,
    "adam_beta2": float,
    "max_grad_norm": float,
    "batch_size": int,
    "gradient_accumulation_steps": int,
    "mlm_probability": float,
}
DEFAULTS = dict(learning_rate=5e-4, warmup_ratio=0.05, weight_decay=0.01, lr_scheduler_type="cosine",
                adam_beta1=0.9, adam_beta2=0.95, max_grad_norm=1.0, batch_size=32, gradient_accumulation_steps=1,
                mlm_probability=0.15)


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


def training_hyperparameters(preset: Preset, model_type: str, overrides: dict) -> dict:
    """DEFAULTS ← preset `training.all` ← preset `training.<model_type>` ← command-line overrides, type-checked."""
    merged = {**DEFAULTS, **preset.training_defaults(model_type)}
    for key, value in merged.items():
        if key not in TRAINING_KEYS:
            raise PresetError(f"{preset.source}: training.{model_type}: unknown key {key!r} "
                              f"(known: {', '.join(TRAINING_KEYS)})")
        expected = TRAINING_KEYS[key]
        if not isinstance(value, expected) and not (expected is float and isinstance(value, int)):
            raise PresetError(f"{preset.source}: training.{key}: expected {expected.__name__}, got {value!r}")
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return merged


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


class JsonLogCallback(TrainerCallback):
    """Appends every Trainer log (loss, learning rate, eval loss, words seen) to `log.jsonl`; stops on NaN/inf."""

    def __init__(self, path: Path, tokens_per_word: float, tokens_per_step: int):
        self.path, self.tokens_per_word, self.tokens_per_step = path, tokens_per_word, tokens_per_step
        self.diverged_at: tuple[int, float] | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        for key in ("loss", "eval_loss"):
            if key in logs and not math.isfinite(logs[key]):
                self.diverged_at = (state.global_step, logs[key])
                control.should_training_stop = True
                control.should_save = False
        if state.is_world_process_zero:
            words = state.global_step * self.tokens_per_step / self.tokens_per_word
            record = {"step": state.global_step, "epoch": state.epoch, "words_seen": round(words), **logs}
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


COMPLETE_MARKER = "checkpoint_complete"


class CheckpointCompleteCallback(TrainerCallback):
    """Marks a Trainer checkpoint complete once everything in it is written (Trainer writes in place, so a
    run killed mid-save leaves a partial `checkpoint-N` that resuming must skip)."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                (folder / COMPLETE_MARKER).write_text(str(state.global_step))


def last_complete_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest `checkpoint-N` carrying the completion marker."""
    found = [p for p in checkpoint_dir.glob("checkpoint-*") if (p / COMPLETE_MARKER).is_file()]
    return max(found, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def truncate_log(path: Path, last_step: int) -> None:
    """Drop log records past `last_step`: a resumed run logs those steps again."""
    if path.is_file():
        kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line)["step"] <= last_step]
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


class MaskingEpochCallback(TrainerCallback):
    """Tells a seeded masking collator the epoch, so each epoch draws new masks (dynamic masking) that a resumed
    run reproduces exactly."""

    def __init__(self, collator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        # At a fresh epoch start `state.epoch` is (about) an integer; when resuming mid-epoch, its fraction.
        epoch = state.epoch or 0.0
        self.collator.epoch = round(epoch) if abs(epoch - round(epoch)) < 1e-3 else math.floor(epoch)


class WordCheckpointCallback(TrainerCallback):
    """BabyLM-style snapshots: a Hub-ready `chck_{N}M` folder each time `every_words` more words are seen."""

    def __init__(self, factory: ModelFactory, folder: Path, every_words: int, max_words: int,
                 tokens_per_word: float, tokens_per_step: int, tokenizer):
        self.factory, self.folder, self.every, self.max_words = factory, folder, every_words, max_words
        self.tokens_per_word, self.tokens_per_step, self.tokenizer = tokens_per_word, tokens_per_step, tokenizer
        self.saved: list[Path] = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        words = state.global_step * self.tokens_per_step / self.tokens_per_word
        milestone = (len(self.saved) + 1) * self.every
        if words >= milestone and milestone <= self.max_words:
            name = f"chck_{milestone / 1e6:g}M"
            if state.is_world_process_zero:
                self.factory.save_model(model, self.tokenizer, output_dir=self.folder / name,
                                        metrics={"words_seen": round(words), "step": state.global_step})
            self.saved.append(self.folder / name)


@torch.no_grad()
def validation_losses(model, dataset, collator, batch_size: int = 16, seed: int = 0) -> dict:
    """Token-mean validation losses per objective: `clm_loss` (GPT, hybrid decoder) and `mlm_loss` (BERT,
    hybrid encoder), masking with a fixed seed so every architecture is scored on the same masks."""
    was_training, rng = model.training, torch.random.get_rng_state()
    model.eval()
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    kinds = detect_kinds(model.config)
    totals: dict[str, list[float]] = {}
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        if kinds == {"decoder": "causal", "encoder": "masked"}:  # the hybrid
            parts = {"clm_loss": (out.clm_loss, batch["labels"][:, 1:]), "mlm_loss": (out.mlm_loss, batch["mlm_labels"])}
        elif "masked" in kinds:
            parts = {"mlm_loss": (out.loss, batch["labels"])}
        else:  # causal: the model shifts labels, so the first position is never predicted
            parts = {"clm_loss": (out.loss, batch["labels"][:, 1:])}
        for name, (loss, labels) in parts.items():
            n = int((labels != -100).sum())
            total = totals.setdefault(name, [0.0, 0])
            total[0] += loss.item() * n
            total[1] += n
    torch.random.set_rng_state(rng)
    model.train(was_training)
    return {name: loss_sum / n for name, (loss_sum, n) in totals.items() if n}


def check_output_dir(output_dir: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to write over an existing run unless asked; a file in the way is always an error."""
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"{output_dir}: output path exists and is a file")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (overwrite or resume):
        raise FileExistsError(f"{output_dir}: already holds a run; pass --overwrite to replace it or --resume")


def pretrain(
    model_type: str = "gpt",
    preset: str | Preset = "tiny",
    corpus=None,
    validation_corpus=None,
    output_dir: str | os.PathLike = "runs/model",
    checkpoint_dir: str | os.PathLike | None = None,
    tokenizer_path: str | os.PathLike | None = None,
    max_steps: int | None = None,
    epochs: float | None = None,
    word_budget: int | None = None,
    seed: int = 42,
    precision: str = "auto",
    eval_steps: int | None = None,
    save_steps: int | None = None,
    logging_steps: int | None = None,
    save_total_limit: int = 2,
    max_eval_blocks: int = 256,
    validation_fraction: float | None = None,
    checkpoint_every_words: int | None = None,
    checkpoint_max_words: int = 10_000_000,
    gradient_checkpointing: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    num_proc: int | None = None,
    dataloader_num_workers: int = 0,
    report_to: str = "tensorboard",
    push_to_hub: str | None = None,
    hub_private: bool = False,
    hub_revision: str | None = None,
    disable_tqdm: bool | None = None,
    encoder_position_embeddings: str | None = None,
    **training_overrides,
) -> dict:
    """Pretrain one architecture and save a Hub-ready folder; returns the run's metrics.

    The run length is `word_budget` words (converted to steps with the corpus' measured tokens per word),
    else `max_steps`, else `epochs` (default 1 epoch). `training_overrides` take the preset's training keys
    (learning_rate, batch_size, warmup_ratio, ...); `encoder_position_embeddings` (`absolute`/`rotary`)
    replaces the preset's.
    """
    started = time.time()
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    preset = preset if isinstance(preset, Preset) else load_preset(preset)
    preset = preset.with_overrides(model_type=model_type, encoder_position_embeddings=encoder_position_embeddings)
    hparams = training_hyperparameters(preset, model_type, training_overrides)
    output_dir = Path(output_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else output_dir.with_name(output_dir.name + "_checkpoints")
    state = PartialState()
    check_output_dir(output_dir, overwrite, resume)
    resume_from = last_complete_checkpoint(checkpoint_dir) if resume and checkpoint_dir.is_dir() else None
    if resume and resume_from is None:
        raise FileNotFoundError(f"{checkpoint_dir}: --resume given but no complete checkpoint-N folder found there")
    set_seed(seed)

    # Data and tokenizer: rank 0 prepares (and caches) them, the other ranks read what it wrote.
    with state.main_process_first():
        if validation_fraction is None:
            validation_fraction = 0.05 if corpus is None else 0.01
        splits = load_corpus(corpus, validation_sources=validation_corpus, validation_fraction=validation_fraction,
                             num_proc=num_proc)
        tokenizer_dir = checkpoint_dir / "tokenizer"
        if tokenizer_path is not None:
            tokenizer = load_tokenizer(tokenizer_path)
        elif resume and tokenizer_dir.is_dir():
            tokenizer = load_tokenizer(tokenizer_dir)
        elif state.is_main_process:
            tokenizer = train_tokenizer(splits["train"]["text"], vocab_size=preset.vocab_size,
                                        output_dir=tokenizer_dir, held_out=splits["validation"]["text"])
        else:
            tokenizer = load_tokenizer(tokenizer_dir)
        if len(tokenizer) > preset.vocab_size and tokenizer_path is None:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than the preset's vocab_size "
                             f"{preset.vocab_size}")
        if preset.max_length > tokenizer.model_max_length:
            tokenizer.model_max_length = preset.max_length
        packed, stats = tokenize_and_pack(splits, tokenizer, block_size=preset.max_length, num_proc=num_proc)
    train_blocks = packed["train"]
    eval_blocks = packed["validation"].select(range(min(max_eval_blocks, len(packed["validation"]))))
    if len(train_blocks) == 0:
        raise ValueError(f"corpus {corpus or 'bundled sample'}: fewer tokens than one block of {preset.max_length}")
    tokens_per_word = stats["train"]["n_tokens"] / max(stats["train"]["n_words"], 1)

    precision = resolve_precision(precision)
    args = TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=epochs or 1.0,
        per_device_train_batch_size=hparams["batch_size"],
        per_device_eval_batch_size=hparams["batch_size"],
        gradient_accumulation_steps=hparams["gradient_accumulation_steps"],
        learning_rate=hparams["learning_rate"],
        warmup_steps=hparams["warmup_ratio"],
        weight_decay=hparams["weight_decay"],
        lr_scheduler_type=hparams["lr_scheduler_type"],
        adam_beta1=hparams["adam_beta1"],
        adam_beta2=hparams["adam_beta2"],
        max_grad_norm=hparams["max_grad_norm"],
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=gradient_checkpointing,
        eval_strategy="steps",
        save_strategy="steps",
        save_total_limit=save_total_limit,
        logging_nan_inf_filter=False,
        report_to=[] if report_to in ("none", "") else [report_to],
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=dataloader_num_workers,
        disable_tqdm=disable_tqdm,
        remove_unused_columns=False,
    )
    # The world size is known once TrainingArguments has set up the distributed state.
    global_batch = hparams["batch_size"] * hparams["gradient_accumulation_steps"] * args.world_size
    tokens_per_step = global_batch * preset.max_length
    if word_budget:
        max_steps = math.ceil(word_budget * tokens_per_word / tokens_per_step)
    args.max_steps = max_steps or -1
    if not max_steps:
        max_steps = math.ceil(len(train_blocks) / global_batch * (epochs or 1.0))
    args.eval_steps = eval_steps or max(1, max_steps // 10)
    args.save_steps = save_steps or args.eval_steps
    args.logging_steps = logging_steps or max(1, min(50, args.eval_steps // 5))
    factory = ModelFactory(preset, output_root=output_dir.parent, experiment_name=output_dir.name)
    model = factory.create_model(tokenizer=tokenizer, verbose=state.is_main_process)
    collator = make_collator(model_type, tokenizer, mlm_probability=hparams["mlm_probability"], seed=seed)
    if state.is_main_process:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
    json_log = JsonLogCallback(checkpoint_dir / "log.jsonl", tokens_per_word, tokens_per_step)
    if resume_from is not None and state.is_main_process:
        truncate_log(json_log.path, int(resume_from.name.rsplit("-", 1)[1]))
    callbacks = [json_log, CheckpointCompleteCallback()]
    if hasattr(collator, "epoch"):
        callbacks.append(MaskingEpochCallback(collator))
    if checkpoint_every_words:
        callbacks.append(WordCheckpointCallback(factory, checkpoint_dir, checkpoint_every_words,
                                                checkpoint_max_words, tokens_per_word, tokens_per_step, tokenizer))
    trainer = Trainer(model=model, args=args, data_collator=collator, train_dataset=train_blocks,
                      eval_dataset=eval_blocks, processing_class=tokenizer, callbacks=callbacks)
    train_started = time.time()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.time() - train_started
    if json_log.diverged_at is not None:
        step, value = json_log.diverged_at
        last = last_complete_checkpoint(checkpoint_dir) if checkpoint_dir.is_dir() else None
        raise TrainingDivergedError(f"loss became {value} at step {step}; training stopped. "
                                    f"Last good checkpoint: {last or 'none'}")

    steps_run = trainer.state.global_step
    metrics = {
        "model_type": model_type,
        "preset": preset.name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps_run,
        "tokens_seen": steps_run * tokens_per_step,
        "words_seen": round(steps_run * tokens_per_step / tokens_per_word),
        "train_seconds": round(train_seconds, 1),
        "train_tokens_per_second": round(result.metrics.get("train_samples_per_second", 0) * preset.max_length, 1),
        "train_loss": result.metrics.get("train_loss"),
        "precision": precision,
        "num_processes": args.world_size,
        "tokens_per_word": round(tokens_per_word, 4),
        "corpus": {split: s for split, s in stats.items()},
        "hyperparameters": hparams,
    }
    metrics.update({f"validation_{k}": v for k, v in validation_losses(model, eval_blocks, collator).items()})
    if state.is_main_process:
        budget = f"{metrics['words_seen']:,} words ({metrics['tokens_seen']:,} tokens, {steps_run} steps)"
        folder = factory.save_model(
            trainer.model, tokenizer, output_dir=output_dir, metrics=metrics,
            training_config={"model_type": model_type, "hyperparameters": hparams, "seed": seed,
                             "precision": precision, "word_budget": word_budget, "max_steps": max_steps,
                             "corpus": str(corpus or "bundled sample")},
            card_info={"training_data": describe_corpus(corpus),
                       "training_budget": budget},
        )
        write_json(checkpoint_dir / "metrics.json", metrics)
        if push_to_hub:
            branches = [cb.saved for cb in callbacks if isinstance(cb, WordCheckpointCallback)]
            factory.push_to_hub(folder, push_to_hub, private=hub_private, revision=hub_revision,
                                branches=branches[0] if branches else [])
    state.wait_for_everyone()
    metrics["wall_seconds"] = round(time.time() - started, 1)
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `hindi-lm pretrain` options."""
    parser.add_argument("--model-type", choices=MODEL_TYPES, default="gpt")
    parser.add_argument("--preset", default="tiny", help="bundled preset name or YAML path (default: tiny)")
    parser.add_argument("--corpus", nargs="+", default=None,
                        help="txt/jsonl files, globs or folders, 'shared' (shared corpus) or hf://name[:config]; "
                             "default: the bundled sample corpus")
    parser.add_argument("--validation-corpus", nargs="+", default=None)
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    parser.add_argument("--tokenizer", dest="tokenizer_path", default=None, help="use this tokenizer folder")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--max-steps", type=int)
    budget.add_argument("--epochs", type=float)
    budget.add_argument("--word-budget", type=float, help="words to train on, e.g. 1e6 (repeats the corpus)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--gradient-accumulation-steps", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--warmup-ratio", type=float)
    parser.add_argument("--seed", type=int, default=42)
    add_position_argument(parser)
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--eval-steps", type=int)
    parser.add_argument("--save-steps", type=int)
    parser.add_argument("--logging-steps", type=int)
    parser.add_argument("--checkpoint-every-words", type=float, help="BabyLM snapshots chck_{N}M, e.g. 1e6")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run in --output-dir")
    parser.add_argument("--num-proc", type=int, default=None, help="processes for tokenization")
    parser.add_argument("--report-to", default="tensorboard", help="tensorboard, trackio or none")
    parser.add_argument("--push-to-hub", metavar="REPO_ID")
    parser.add_argument("--hub-private", action="store_true")
    parser.add_argument("--hub-revision")


def add_position_argument(parser: argparse.ArgumentParser) -> None:
    """`--encoder-positions`: override the preset's `encoder_position_embeddings` (bert, hybrid encoder)."""
    parser.add_argument("--encoder-positions", dest="encoder_position_embeddings", choices=ENCODER_POSITION_EMBEDDINGS,
                        help="rotary (RoFormer) or absolute (stock BERT) positions for bert and the hybrid's "
                        "encoder (default: the preset's)")


def single(values):
    """argparse `nargs="+"` gives a list; one value (e.g. "shared") stays a plain string for `load_corpus`."""
    return values[0] if isinstance(values, list) and len(values) == 1 else values


def run(args: argparse.Namespace) -> int:
    """Run `hindi-lm pretrain` from parsed arguments; prints the metrics as JSON."""
    metrics = pretrain(
        model_type=args.model_type, preset=args.preset, corpus=single(args.corpus),
        validation_corpus=single(args.validation_corpus), output_dir=args.output_dir, checkpoint_dir=args.checkpoint_dir,
        tokenizer_path=args.tokenizer_path, max_steps=args.max_steps, epochs=args.epochs,
        word_budget=int(args.word_budget) if args.word_budget else None, seed=args.seed,
        precision=args.precision, eval_steps=args.eval_steps, save_steps=args.save_steps,
        logging_steps=args.logging_steps, gradient_checkpointing=args.gradient_checkpointing,
        checkpoint_every_words=int(args.checkpoint_every_words) if args.checkpoint_every_words else None,
        resume=args.resume, overwrite=args.overwrite, num_proc=args.num_proc, report_to=args.report_to,
        push_to_hub=args.push_to_hub, hub_private=args.hub_private, hub_revision=args.hub_revision,
        batch_size=args.batch_size, gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate, warmup_ratio=args.warmup_ratio,
        encoder_position_embeddings=args.encoder_position_embeddings,
    )
    if PartialState().is_main_process:
        summary = {k: v for k, v in metrics.items() if k not in ("corpus", "hyperparameters")}
        print(json.dumps(summary, indent=2))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="hindi-lm pretrain", description=__doc__.split("\n")[0])
    add_arguments(parser)
    from training.cli import guarded

    return guarded(run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
