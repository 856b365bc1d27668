"""GPT-BERT ("GPT or BERT: why not both?", Charpentier & Samuel, CoNLL-BabyLM 2024): ONE transformer stack trained on
a mix of causal examples and masked examples.

* The stack is transformers' own `GPT2Model` (the project's GPT, same parameters). The only thing GPT-BERT adds is
  the attention mask, chosen per example by `is_causal`: causal for a causal row, bidirectional for a masked row.
* Masked rows are trained with masked next-token prediction (MNTP): the masked token at position k+1 is predicted
  at output k. So both objectives share the one head (tied to the token embedding) and the one output alignment of
  a causal LM: output k always predicts token k+1.
* `GPTBERTForCausalLM` is the causal mode (generation with a KV cache); `GPTBERTForMaskedLM` is the bidirectional
  mode with the MNTP shift undone inside the head, so its logits at position i predict token i, as a BERT's do
  (stock `pipeline("fill-mask")`, pseudo-log-likelihoods); the classification heads read the bidirectional mode.

Every class is the same `transformer` (+ `lm_head`) with the parameter names of `GPT2LMHeadModel`, so all of them
load from one folder. This file is copied next to the weights as remote code: it imports only `transformers`,
`torch` and its siblings `configuration_gpt_bert.py` and `losses.py` (the chunked head of the pretraining forward).
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import GenerationMixin
from transformers.loss.loss_utils import ForCausalLMLoss, ForMaskedLMLoss
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import (
    BaseModelOutputWithPastAndCrossAttentions,
    CausalLMOutputWithPast,
    MaskedLMOutput,
    ModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.models.gpt2.modeling_gpt2 import GPT2Model, GPT2PreTrainedModel

from .configuration_gpt_bert import AUTO_MAP, GPTBERTConfig
from .losses import linear_cross_entropy

LAYER_CLASS = "GPT2Block"  # the stack's layer (FSDP wraps each one)


def per_example_mask(config, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None,
                     is_causal: torch.Tensor) -> torch.Tensor:
    """The 4D attention mask of a batch whose rows are causal (`is_causal` True) or bidirectional (False), padding
    hidden in both, in the form the attention implementation (sdpa, eager, ...) takes.

    Built by transformers' own causal-mask factory with its block overlay: tokens of one block (id >= 0) see each
    other in both directions, id -1 keeps a row causal. A bidirectional row is one block."""
    batch, length = inputs_embeds.shape[:2]
    blocks = torch.where(is_causal, -1, 0)[:, None].expand(batch, length)
    return create_causal_mask(config=config, inputs_embeds=inputs_embeds, attention_mask=attention_mask, cache=None,
                              block_sequence_ids=blocks)


class GPTBERTPreTrainedModel(GPT2PreTrainedModel):
    """GPT-2's weight init, gradient checkpointing and FSDP unit (`GPT2Block`), with GPT-BERT's config."""

    config_class = GPTBERTConfig
    config: GPTBERTConfig
    # A bidirectional row needs an explicit mask, which flash attention does not take; the mask also depends on
    # the data (`is_causal`), so no full-graph compile.
    _supports_flash_attn = False
    _can_compile_fullgraph = False

    def _initialize_weights(self, module, is_custom_code: bool = False):
        # For remote code transformers skips a module whose own parameters are all initialised, which a module with
        # none (GPT2Attention, GPT2MLP) always is: GPT-2's 1/sqrt(2·layers) scaling of the residual projections, done
        # there, would be lost. The init is GPT-2's own (transformers.initialization, which never overwrites loaded
        # weights), so take the stock path: GPT-BERT starts from the weights the project's GPT starts from.
        super()._initialize_weights(module, is_custom_code=False)


class GPTBERTModel(GPTBERTPreTrainedModel, GPT2Model):
    """The stack: `GPT2Model` whose attention is causal or bidirectional per example (`is_causal`)."""

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        is_causal: bool | torch.Tensor = True,
        cache=None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        r"""
        is_causal: True (every row causal: GPT-2 itself, with its KV cache), False (every row bidirectional), or a
            `(batch,)` bool tensor with one mode per row. Other arguments are `GPT2Model`'s.
        """
        rows = len(input_ids if input_ids is not None else inputs_embeds)
        is_causal = torch.as_tensor(is_causal, dtype=torch.bool).expand(rows)
        if not is_causal.all():
            if cache is not None or use_cache:
                raise ValueError("a bidirectional row cannot use a KV cache (its tokens see later tokens)")
            use_cache = False  # GPT-2 would otherwise fill a cache the bidirectional rows cannot use
            if inputs_embeds is None:
                inputs_embeds = self.wte(input_ids)
            attention_mask = per_example_mask(self.config, inputs_embeds, attention_mask,
                                              is_causal.to(inputs_embeds.device))
            input_ids = None  # GPT-2 reads the embeddings computed here
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, cache=cache,
                               inputs_embeds=inputs_embeds, use_cache=use_cache, **kwargs)


class GPTBERTWithHead(GPTBERTPreTrainedModel):
    """The stack and the LM head tied to its token embedding, as in `GPT2LMHeadModel` (same parameter names)."""

    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}  # v5 dict form {target: source}

    def __init__(self, config: GPTBERTConfig):
        super().__init__(config)
        self.transformer = GPTBERTModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()


@dataclass
class GPTBERTPreTrainingOutput(ModelOutput):
    """Output of the pretraining forward: the mixed loss, the loss of each objective, and the logits."""

    loss: torch.FloatTensor | None = None
    clm_loss: torch.FloatTensor | None = None
    mlm_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None


class GPTBERTForPreTraining(GPTBERTWithHead):
    """The stack and its tied head over a batch that mixes causal rows and MNTP rows; returns one loss.

    `loss = c·clm_loss + (1 - c)·mlm_loss`, `c` the batch's share of causal rows: each objective's loss is a mean
    over its labelled tokens, weighted by its share of the examples (the paper's `ratio` weighting), so a causal row
    with every token labelled does not outweigh a masked row with 15% of them.
    """

    # Two token means: Trainer must not pass one `num_items_in_batch` for both (it scales for accumulation itself).
    accepts_loss_kwargs = False

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        is_causal: bool | torch.Tensor = True,
        **kwargs,
    ) -> GPTBERTPreTrainingOutput:
        r"""
        input_ids: the clean tokens in a causal row, the masked copy (80/10/10) in an MNTP row.
        labels: aligned with `input_ids` and shifted inside, as a causal LM's: the tokens themselves in a causal row
            (padding -100), the original tokens at the masked positions and -100 elsewhere in an MNTP row. Output k
            is scored against label k+1 in both.
        is_causal: `(batch,)` bool, True for a causal row (causal attention), False for an MNTP row (bidirectional);
            or one bool for every row.

        Without labels, `logits` are the head at every position `(batch, length, vocab)`; with labels only at the
        labelled positions `(n_labelled, vocab)`, in row-major order (an MNTP row needs ~15% of them).
        """
        rows = torch.as_tensor(is_causal, dtype=torch.bool).expand(len(input_ids)).to(input_ids.device)
        hidden = self.transformer(input_ids, attention_mask=attention_mask, is_causal=rows, use_cache=False,
                                  **kwargs).last_hidden_state
        if labels is None:
            return GPTBERTPreTrainingOutput(logits=self.lm_head(hidden))
        # Output k predicts label k+1, in both kinds of row.
        targets = labels[:, 1:]
        labelled = targets != -100
        causal_tokens = rows[:, None].expand_as(targets)[labelled]
        shares = {"clm_loss": rows.float().mean(), "mlm_loss": 1 - rows.float().mean()}
        kinds = {"clm_loss": causal_tokens, "mlm_loss": ~causal_tokens}
        if self.training and torch.is_grad_enabled():
            # The head and its cross-entropy chunk by chunk (no logits kept): the same loss, one weight per token.
            weights = torch.zeros(targets.shape, device=hidden.device)
            weights[labelled] = torch.where(causal_tokens, shares["clm_loss"] / causal_tokens.sum().clamp(min=1),
                                            shares["mlm_loss"] / (~causal_tokens).sum().clamp(min=1))
            loss, token_losses = linear_cross_entropy(hidden[:, :-1], self.lm_head.weight, targets,
                                                      token_weights=weights, return_token_losses=True)
            out = GPTBERTPreTrainingOutput(loss=loss)
            token_losses = token_losses[labelled.flatten()]
        else:
            logits = self.lm_head(hidden[:, :-1][labelled])
            token_losses = F.cross_entropy(logits.float(), targets[labelled], reduction="none")
            out = GPTBERTPreTrainingOutput(logits=logits)
        weighted = []
        for name, tokens in kinds.items():
            if tokens.any():
                setattr(out, name, token_losses[tokens].mean())
                weighted.append(shares[name] * getattr(out, name))
        if out.loss is None:
            out.loss = torch.stack(weighted).sum() if weighted else token_losses.sum()  # no label: a zero loss
        return out


class GPTBERTForCausalLM(GPTBERTWithHead, GenerationMixin):
    """The causal mode: `GPT2LMHeadModel` over the same weights, for `generate` (KV cache) and text-generation."""

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache=None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        r"""
        labels: causal LM labels (usually `input_ids`, padding -100; shifted inside).
        """
        out = self.transformer(input_ids, attention_mask=attention_mask, cache=cache, position_ids=position_ids,
                               inputs_embeds=inputs_embeds, use_cache=use_cache)
        # Generation needs only the last positions' logits; slicing first saves the vocabulary projection.
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(out.last_hidden_state[:, keep, :])
        loss = None if labels is None else ForCausalLMLoss(logits, labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=out.cache)


class GPTBERTForMaskedLM(GPTBERTWithHead):
    """The bidirectional mode with BERT's output alignment: the MNTP shift is undone before the head, so the logits
    at position i come from output i-1 and predict token i (fill-mask, pseudo-log-likelihood). Position 0 has no
    output to its left: its logits are 0, a uniform distribution (it holds [CLS], which is never masked)."""

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        r"""
        labels: masked LM labels as a BERT's (the original token at a masked position, -100 elsewhere; not shifted).
        """
        hidden = self.transformer(input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                                  is_causal=False).last_hidden_state
        # Shift the hidden states, not the logits: the head (and a hook on it, as the PLL scorer's) still sees one
        # state per position, and the zero state at position 0 gives zero logits (the head has no bias).
        hidden = torch.cat([torch.zeros_like(hidden[:, :1]), hidden[:, :-1]], dim=1)
        logits = self.lm_head(hidden)
        loss = None if labels is None else ForMaskedLMLoss(logits, labels, vocab_size=self.config.vocab_size,
                                                           **kwargs)
        return MaskedLMOutput(loss=loss, logits=logits)


class GPTBERTClassifier(GPTBERTPreTrainedModel):
    """Shared body of the classification heads: the bidirectional mode → dropout → linear layer."""

    per_sequence = True  # one label per sequence (read at the leading [CLS]), else one per token
    output_class = SequenceClassifierOutput

    def __init__(self, config: GPTBERTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = GPTBERTModel(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.resid_pdrop
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.n_embd, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ):
        hidden = self.transformer(input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                                  is_causal=False).last_hidden_state
        logits = self.classifier(self.dropout(hidden[:, 0] if self.per_sequence else hidden))
        loss = None
        if labels is not None:  # transformers' sequence loss takes (labels, logits), its token loss (logits, labels)
            pair = (labels, logits) if self.per_sequence else (logits, labels)
            loss = self.loss_function(*pair, self.config, **kwargs)
        return self.output_class(loss=loss, logits=logits)


class GPTBERTForSequenceClassification(GPTBERTClassifier):
    """Bidirectional state at the leading [CLS] (which sees the whole text) → dropout → linear classifier."""

    per_sequence = True
    output_class = SequenceClassifierOutput


class GPTBERTForTokenClassification(GPTBERTClassifier):
    """Bidirectional state of every token → dropout → linear tagger (POS, NER)."""

    per_sequence = False
    output_class = TokenClassifierOutput


# `save_pretrained` copies this file and its sibling next to the weights for the classes registered here; the
# config's AUTO_MAP (written out in full) names every Auto class, so each class is registered once.
for _auto_class, _target in AUTO_MAP.items():
    _model_class = globals().get(_target.rsplit(".", 1)[1])
    if _auto_class != "AutoConfig" and "_auto_class" not in vars(_model_class):
        _model_class.register_for_auto_class(_auto_class)

__all__ = [
    "GPTBERTPreTrainedModel",
    "GPTBERTModel",
    "GPTBERTWithHead",
    "GPTBERTPreTrainingOutput",
    "GPTBERTForPreTraining",
    "GPTBERTForCausalLM",
    "GPTBERTForMaskedLM",
    "GPTBERTClassifier",
    "GPTBERTForSequenceClassification",
    "GPTBERTForTokenClassification",
]
