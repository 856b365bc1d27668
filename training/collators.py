"""Batch collators, all built on transformers' DataCollatorForLanguageModeling; each architecture of the registry
(`hindi_models/architectures.py`) names its kind:

* causal (gpt):  `DataCollatorForLanguageModeling(mlm=False)`: labels = input_ids, padding -> -100
                 (the model shifts labels internally).
* masked (bert): `MaskedLMCollator`: `mlm_probability` (default `MLM_PROBABILITY`, 15%) of the non-special tokens
                 are chosen; of those 80% -> [MASK], 10% -> a random *non-special* token, 10% unchanged. Labels are
                 -100 everywhere else.
* causal+masked (hybrid): `HybridCollator`: the causal batch (input_ids / attention_mask / labels) plus a masked
                 copy (mlm_input_ids / mlm_labels) of the same tokens, for the hybrid's two objectives.
* causal|masked (gpt_bert): `GPTBERTCollator`: each example is a causal row or a masked-next-token row (its masked
                 copy and MLM labels), `causal_fraction` of them causal, with a per-row `is_causal` flag.

All take packed blocks (equal-length input_ids) or variable-length examples (padded with [PAD] on the
right, optionally to a multiple of `pad_to_multiple_of`); as lists of ids or dicts with `input_ids`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import DataCollatorForLanguageModeling

from hindi_models.architectures import get_architecture
from hindi_models.presets import CAUSAL_FRACTION, MLM_PROBABILITY


@dataclass
class MaskedLMCollator(DataCollatorForLanguageModeling):
    """DataCollatorForLanguageModeling(mlm=True) whose random replacements never draw a special token.

    The parent draws random tokens from the whole vocabulary, [PAD]/[CLS]/[SEP]/[MASK]/[UNK] included:
    a [SEP] injected mid-document would fake a document boundary. Here the parent chooses the positions
    and does the [MASK] replacements; the random ones are drawn from the non-special ids only.
    """

    mlm: bool = True
    # Part of the per-batch seed (see `torch_call`); the pretraining script sets it at each epoch start.
    epoch: int = 0

    def __post_init__(self):
        super().__post_init__()
        if not self.mlm:
            raise ValueError("MaskedLMCollator needs mlm=True; use DataCollatorForLanguageModeling(mlm=False)")
        if self.return_tensors != "pt":  # the override below is the torch path only
            raise ValueError(f"{type(self).__name__} supports return_tensors='pt' only, not {self.return_tensors!r}")
        self.special_ids = torch.tensor(sorted(set(self.tokenizer.all_special_ids)), dtype=torch.long)
        normal = torch.ones(len(self.tokenizer), dtype=torch.bool)
        normal[self.special_ids[self.special_ids < len(self.tokenizer)]] = False
        self.normal_ids = normal.nonzero().squeeze(1)

    def batch_seed(self, examples) -> int:
        """A seed from (seed, epoch, the batch's token ids): the same batch always gets the same masks."""
        digest = hashlib.blake2b(f"{self.seed}:{self.epoch}".encode(), digest_size=8)
        for example in examples:
            ids = example["input_ids"] if isinstance(example, dict) else example
            digest.update(np.asarray(ids, dtype=np.int64).tobytes())
        return int.from_bytes(digest.digest(), "little") >> 1

    def torch_call(self, examples):
        if self.seed is not None:
            # Seeded masks depend on the batch, not on how many batches came before. A run resumed from a
            # checkpoint re-collates the batch that the data loader had already pre-fetched when the
            # checkpoint was taken, and draws exactly the masks the uninterrupted run drew.
            self.generator = torch.Generator().manual_seed(self.batch_seed(examples))
            self._generator_pid = os.getpid()
        return super().torch_call(examples)

    def torch_mask_tokens(self, inputs: Any, special_tokens_mask: Any | None = None, offset_mapping: Any = None):
        if special_tokens_mask is None:  # vectorised; the parent's fallback loops in Python per token
            special_tokens_mask = torch.isin(inputs, self.special_ids)
        random_prob, self.random_replace_prob = self.random_replace_prob, 0.0
        try:  # random_replace_prob=0: the parent only picks positions and puts [MASK] on 80% of them
            inputs, labels = super().torch_mask_tokens(inputs, special_tokens_mask, offset_mapping)
        finally:
            self.random_replace_prob = random_prob
        if random_prob > 0 and self.mask_replace_prob < 1:
            # Of the chosen positions left unchanged (labels set, input not [MASK]), a share
            # random/(1-mask) gets a random token: overall 80/10/10 with the defaults.
            left = (labels != -100) & (inputs != self.tokenizer.mask_token_id)
            draw = torch.full(labels.shape, random_prob / (1 - self.mask_replace_prob))
            indices_random = torch.bernoulli(draw, generator=self.generator).bool() & left
            picks = torch.randint(len(self.normal_ids), labels.shape, generator=self.generator)
            inputs[indices_random] = self.normal_ids[picks][indices_random]
        return inputs, labels


@dataclass
class HybridCollator(MaskedLMCollator):
    """Causal batch + masked copy for the GPT+BERT hybrid.

    Returns input_ids / attention_mask / labels (causal: labels = input_ids with padding -> -100) and
    mlm_input_ids / mlm_labels (the MaskedLMCollator copy; labels -100 except at the chosen positions).
    The two copies agree wherever mlm_labels is -100.
    """

    def torch_call(self, examples):
        batch = super().torch_call(examples)  # input_ids masked, labels = MLM labels
        mlm_input_ids, mlm_labels = batch["input_ids"], batch["labels"]
        # The chosen positions hold their original token in the labels: rebuild the unmasked ids exactly.
        input_ids = torch.where(mlm_labels != -100, mlm_labels, mlm_input_ids)
        pad_id = self.tokenizer.pad_token_id
        if "attention_mask" not in batch:  # lists of ids carry no mask
            batch["attention_mask"] = (input_ids != pad_id).long()
        labels = input_ids.clone()
        labels[batch["attention_mask"] == 0] = -100
        batch.update(input_ids=input_ids, labels=labels, mlm_input_ids=mlm_input_ids, mlm_labels=mlm_labels)
        return batch


@dataclass
class GPTBERTCollator(HybridCollator):
    """A batch of causal rows and masked-next-token (MNTP) rows for GPT-BERT, with a `(batch,)` `is_causal` flag.

    A causal row is the clean tokens with causal labels (padding -100); an MNTP row is the masked copy with its MLM
    labels, both exactly as `HybridCollator` makes them (the masking is `MaskedLMCollator`'s). The model shifts the
    labels in both, so position 0, which no output precedes, is never masked. Each batch has `causal_fraction` x
    batch size causal rows, rounded up or down at random so that the long-run share is `causal_fraction` exactly;
    which rows, and the rounding, come from the batch's seeded generator like the masks, so `--resume` is exact.
    """

    causal_fraction: float = CAUSAL_FRACTION

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.causal_fraction <= 1:
            raise ValueError(f"causal_fraction must be in [0, 1], got {self.causal_fraction}")

    def torch_call(self, examples):
        batch = super().torch_call(examples)  # every example both ways
        rows = len(batch["input_ids"])
        expected = self.causal_fraction * rows
        count = int(expected) + int(torch.rand((), generator=self.generator) < expected % 1)
        is_causal = torch.zeros(rows, dtype=torch.bool)
        is_causal[torch.randperm(rows, generator=self.generator)[:count]] = True
        return self._rows(batch, is_causal)

    def both_objectives(self, examples):
        """Every example twice: first all as causal rows, then all as MNTP rows (validation scores every block with
        both objectives, as the hybrid's are)."""
        batch = super().torch_call(examples)
        rows = len(batch["input_ids"])
        return self._rows({k: torch.cat([v, v]) for k, v in batch.items()}, torch.arange(2 * rows) < rows)

    @staticmethod
    def _rows(batch, is_causal):
        causal = is_causal[:, None]
        return {"input_ids": torch.where(causal, batch["input_ids"], batch["mlm_input_ids"]),
                "attention_mask": batch["attention_mask"],
                "labels": torch.where(causal, batch["labels"], batch["mlm_labels"]),
                "is_causal": is_causal}

    def torch_mask_tokens(self, inputs: Any, special_tokens_mask: Any | None = None, offset_mapping: Any = None):
        if special_tokens_mask is None:
            special_tokens_mask = torch.isin(inputs, self.special_ids)
        special_tokens_mask = special_tokens_mask.bool().clone()
        special_tokens_mask[:, 0] = True  # MNTP reads token k+1 at output k: no output reads position 0
        return super().torch_mask_tokens(inputs, special_tokens_mask, offset_mapping)


def make_collator(
    model_type: str,
    tokenizer,
    mlm_probability: float = MLM_PROBABILITY,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    pad_to_multiple_of: int | None = None,
    seed: int | None = None,
    causal_fraction: float = CAUSAL_FRACTION,
):
    """The collator of an architecture of the registry (`gpt`, `bert`, `hybrid`, `gpt_bert`), by its collator kind;
    `causal_fraction` is read by the `causal|masked` kind (GPT-BERT) only."""
    kind = get_architecture(model_type).collator
    if kind == "causal":
        return DataCollatorForLanguageModeling(tokenizer, mlm=False, pad_to_multiple_of=pad_to_multiple_of, seed=seed)
    cls = {"masked": MaskedLMCollator, "causal+masked": HybridCollator, "causal|masked": GPTBERTCollator}[kind]
    extra = {"causal_fraction": causal_fraction} if cls is GPTBERTCollator else {}
    return cls(
        tokenizer,
        mlm_probability=mlm_probability,
        mask_replace_prob=mask_replace_prob,
        random_replace_prob=random_replace_prob,
        pad_to_multiple_of=pad_to_multiple_of,
        seed=seed,
        **extra,
    )
