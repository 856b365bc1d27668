"""Trainer callbacks of a pretraining run: the JSON log (and NaN stop), complete-checkpoint markers, the masking
epoch, and BabyLM word snapshots; with the helpers that find and trim what a killed run left behind, and the
gather that lets the main process save a model FSDP shards."""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from hindi_models.factory import ModelFactory


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


class StepTimeCallback(TrainerCallback):
    """Steady-state speed of the real training loop: the wall time between consecutive optimizer steps (data
    loading and collation included), leaving out the first `warmup_steps` (allocation, `torch.compile`) and any
    interval in which Trainer evaluated or saved; those are reported on their own."""

    def __init__(self, tokens_per_step: int, warmup_steps: int = 3):
        self.tokens_per_step, self.warmup_steps = tokens_per_step, warmup_steps
        self.started = self.last = None
        self.steady, self.interrupted, self.warmup_seconds = [], [], 0.0
        self._busy = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = self.last = time.perf_counter()
        self.first_step = state.global_step  # > 0 when resuming

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        interval, self.last = now - self.last, now
        if state.global_step - self.first_step <= self.warmup_steps:
            self.warmup_seconds += interval
        elif self._busy:
            self.interrupted.append(interval)
        else:
            self.steady.append(interval)
        self._busy = control.should_evaluate or control.should_save  # done after this hook, in the next interval

    def summary(self) -> dict:
        """Median step seconds and tokens/s of the steady steps (and their mean, which counts rare slow steps),
        warm-up seconds, and the seconds that evaluation and saving added (interrupted intervals minus a median step
        each)."""
        if not self.steady:
            return {}
        median = statistics.median(self.steady)
        return {"steady_steps": len(self.steady), "step_seconds": round(median, 4),
                "mean_step_seconds": round(statistics.fmean(self.steady), 4),
                "steady_tokens_per_second": round(self.tokens_per_step / median, 1),
                "warmup_steps": self.warmup_steps, "warmup_seconds": round(self.warmup_seconds, 2),
                "eval_and_save_seconds": round(sum(max(0.0, t - median) for t in self.interrupted), 2)}


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


VALIDATION_EPOCH = 0  # the masks every validation is scored on: those of a first epoch, as in runs under one epoch


class MaskingEpochCallback(TrainerCallback):
    """Tells a seeded masking collator the epoch, so each epoch draws new masks (dynamic masking) that a resumed
    run reproduces exactly; Trainer's evaluations in between always get `VALIDATION_EPOCH`'s masks, so validation
    losses stay comparable across epochs and between models that end in different epochs."""

    def __init__(self, collator):
        self.collator = collator
        self.training_epoch = None  # the epoch to restore after an evaluation inside training

    def on_epoch_begin(self, args, state, control, **kwargs):
        # At a fresh epoch start `state.epoch` is (about) an integer; when resuming mid-epoch, its fraction.
        epoch = state.epoch or 0.0
        self.collator.epoch = round(epoch) if abs(epoch - round(epoch)) < 1e-3 else math.floor(epoch)

    def on_step_end(self, args, state, control, **kwargs):
        # Trainer's flow callback, which runs before this one, has just decided whether to evaluate after this step.
        if control.should_evaluate and self.training_epoch is None:
            self.training_epoch, self.collator.epoch = self.collator.epoch, VALIDATION_EPOCH

    def on_evaluate(self, args, state, control, **kwargs):
        if self.training_epoch is not None:
            self.collator.epoch, self.training_epoch = self.training_epoch, None


def full_state_dict(model) -> dict | None:
    """The full state dict of a model that FSDP (1 or 2) shards, gathered to CPU on the main process (empty on the
    others), for `ModelFactory.save_model(state_dict=...)`; None for a model that each process holds whole.

    Under FSDP this is a collective: every process must call it at the same point, not only the one that saves.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel

    # Trainer hands callbacks, and keeps as `trainer.model`, the FSDP-wrapped model under FSDP.
    if not isinstance(model, (FSDPModule, FullyShardedDataParallel)):
        return None
    # accelerate's `Accelerator.get_state_dict` gathers FSDP2 the same way; a callback has no accelerator to call.
    # `cpu_offload` gathers to rank 0 only and keeps the full copy off the accelerator.
    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


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
            weights = full_state_dict(model)
            if state.is_world_process_zero:
                self.factory.save_model(model, self.tokenizer, output_dir=self.folder / name,
                                        metrics={"words_seen": round(words), "step": state.global_step},
                                        state_dict=weights)
            self.saved.append(self.folder / name)
