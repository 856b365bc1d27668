"""Models built from a preset: each architecture's config comes from one shared shape (`shape_config`), and its
class and FSDP units from the registry in `architectures.py`.

GPT and BERT are stock transformers classes (`model_type` gpt2 / bert / roformer), so saved folders load with the
Auto classes and no remote code. `HybridGPTBERTConfig.decoder_config()` / `encoder_config()` are exactly the
standalone GPT's / BERT's configs of the same preset; GPT-BERT's config is the GPT's (`GPTBERTConfig.from_gpt2_config`).
"""

from __future__ import annotations

from functools import cache

import torch
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput, MaskedLMOutput

from .architectures import get_architecture
from .configuration_hybrid import HybridGPTBERTConfig
from .losses import causal_lm_loss, linear_cross_entropy
from .presets import Preset
from .tokenizer import BOS_ID, CLS_ID, EOS_ID, MASK_ID, PAD_ID, SEP_ID


def special_token_ids(tokenizer=None) -> dict:
    """pad/bos/eos/cls/sep/mask ids from a tokenizer (or the project's fixed ids 0-4), never GPT-2's 50256."""
    if tokenizer is None:
        return dict(pad=PAD_ID, bos=BOS_ID, eos=EOS_ID, cls=CLS_ID, sep=SEP_ID, mask=MASK_ID)
    ids = dict(
        pad=tokenizer.pad_token_id,
        bos=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id,
        eos=tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id,
        cls=tokenizer.cls_token_id,
        sep=tokenizer.sep_token_id,
        mask=tokenizer.mask_token_id,
    )
    missing = [name for name, value in ids.items() if value is None]
    if missing:
        raise ValueError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no {', '.join(missing)} token")
    return ids


def shape_config(preset: Preset, vocab_size: int | None = None, token_ids: dict | None = None) -> HybridGPTBERTConfig:
    """The preset's shape as one config, from which every architecture takes its own (see the registry)."""
    ids = token_ids or special_token_ids()
    return HybridGPTBERTConfig(
        vocab_size=vocab_size or preset.vocab_size,
        hidden_size=preset.hidden_size,
        num_hidden_layers=preset.num_layers,
        num_attention_heads=preset.num_heads,
        intermediate_size=preset.intermediate_size,
        max_position_embeddings=preset.max_length,
        hidden_dropout_prob=preset.dropout,
        attention_probs_dropout_prob=preset.dropout,
        mlm_loss_weight=preset.mlm_loss_weight,
        clm_loss_weight=preset.clm_loss_weight,
        tie_lm_heads=preset.tie_lm_heads,
        encoder_position_embeddings=preset.encoder_position_embeddings,
        sparse_prediction=True,  # pretraining needs only the masked positions' MLM logits
        **{f"{name}_token_id": ids[name] for name in ("pad", "bos", "eos", "cls", "sep", "mask")},
    )


def make_model_config(preset: Preset, vocab_size: int | None = None, token_ids: dict | None = None) -> PreTrainedConfig:
    """The transformers config of `preset.model_type`: GPT2Config, BertConfig (RoFormerConfig with rotary encoder
    positions), HybridGPTBERTConfig or GPTBERTConfig."""
    return get_architecture(preset.model_type).config(shape_config(preset, vocab_size, token_ids))


class SparseMaskedLM:
    """Pretraining forward of a stock masked LM (BertForMaskedLM, RoFormerForMaskedLM): in training mode with labels,
    the vocabulary head scores the labelled positions only (the 15-30% the collator masked), as the hybrid's
    `sparse_prediction` and GPT-BERT's masked rows do, and its decoder and cross-entropy run chunk by chunk
    (`losses.linear_cross_entropy`, with the decoder's bias). The loss is the stock one (mean cross-entropy over
    labelled positions; 0, not NaN, for a batch without any) and no logits are returned; in eval mode, without labels
    or under `no_grad` the stock forward runs unchanged (validation losses, fill-mask, PLL)."""

    # The loss is a mean over this batch's masked positions and ignores `num_items_in_batch`, so Trainer must divide
    # it for gradient accumulation itself (stock BERT's `**kwargs` signature would tell Trainer it need not).
    accepts_loss_kwargs = False

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        if labels is None or not self.training or not torch.is_grad_enabled():
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        hidden_states = self.base_model(input_ids, attention_mask=attention_mask, **kwargs)[0]
        labelled = labels != -100
        head = self.cls.predictions
        loss = linear_cross_entropy(head.transform(hidden_states[labelled]), head.decoder.weight, labels[labelled],
                                    bias=head.decoder.bias)
        return MaskedLMOutput(loss=loss)


class ChunkedCausalLM:
    """Pretraining forward of a stock causal LM (GPT2LMHeadModel, or any `*ForCausalLM` whose head has no bias): in
    training mode with labels and gradients on, the loss comes from `losses.causal_lm_loss` (the vocabulary head and
    its cross-entropy chunk by chunk, never the full [batch, length, vocab] logits). The loss is the stock one (labels
    shifted inside, the mean over labelled positions or their sum over `num_items_in_batch`) and no logits are
    returned; in eval mode, without labels or
    under `no_grad` the stock forward runs unchanged (validation losses, generation, scoring)."""

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        head = self.get_output_embeddings()
        if labels is None or not self.training or not torch.is_grad_enabled() or head.bias is not None:
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        hidden_states = self.base_model(input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        return CausalLMOutput(loss=causal_lm_loss(hidden_states, head.weight, labels, num_items_in_batch))


@cache
def pretraining_class(model_class: type, mixin: type) -> type:
    """`model_class` with a pretraining forward (`SparseMaskedLM`, `ChunkedCausalLM`). It keeps the stock class's
    name, so `save_pretrained` writes the stock class into config.json's `architectures` and saved folders load as
    stock models."""
    return type(model_class.__name__, (mixin, model_class), {"__module__": __name__})


# The training forward `build_model(..., for_pretraining=True)` gives each stock collator kind.
_PRETRAINING_FORWARD = {"masked": SparseMaskedLM, "causal": ChunkedCausalLM}


def build_model(preset: Preset, vocab_size: int | None = None, token_ids: dict | None = None,
                for_pretraining: bool = False) -> PreTrainedModel:
    """A freshly initialised model of `preset.model_type`; `for_pretraining` gives the stock classes a faster training
    forward with the same loss: BERT the sparse masked-LM head (`SparseMaskedLM`: the vocabulary head on the masked
    positions only), GPT the chunked head and cross-entropy (`ChunkedCausalLM`)."""
    arch = get_architecture(preset.model_type)
    variant = arch.variant(preset.encoder_position_embeddings)
    model_class = variant.model_class
    if for_pretraining and arch.collator in _PRETRAINING_FORWARD:
        model_class = pretraining_class(model_class, _PRETRAINING_FORWARD[arch.collator])
    model = model_class(make_model_config(preset, vocab_size, token_ids))
    # accelerate's FSDP wrap (TRANSFORMER_BASED_WRAP with no class list) shards each class in `_no_split_modules`
    # as one unit: the transformer layers only, so the token embedding stays in the root unit with the LM head
    # tied to it (stock BERT also lists BertEmbeddings; stock RoFormer lists nothing).
    model._no_split_modules = set(variant.layer_classes)
    return model


def count_parameters(model) -> tuple[int, int]:
    """(total, trainable) parameters, counting a shared (tied) tensor once."""
    params = list(model.parameters())  # `parameters()` already de-duplicates shared tensors
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)
