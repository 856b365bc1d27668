"""GPT+BERT hybrid: one shared token embedding feeding a bidirectional BERT encoder and a causal GPT-2 decoder.

Generation goes through the decoder, understanding (fill-mask, classification, tagging) through the encoder.
Every Auto class below is the same backbone with only the parts it needs, so all of them load from one folder
with identical parameter names. This file is copied next to the weights as remote code: it imports only
`transformers`, `torch` and its siblings `configuration_hybrid.py` and `losses.py` (the chunked CLM and sparse MLM
heads of the pretraining forward).
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.loss.loss_utils import ForCausalLMLoss, ForMaskedLMLoss
from transformers.modeling_outputs import (
    CausalLMOutputWithPast,
    MaskedLMOutput,
    ModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.models.bert.modeling_bert import BertModel
from transformers.models.gpt2.modeling_gpt2 import GPT2Model
from transformers.models.roformer.modeling_roformer import RoFormerModel

from .configuration_hybrid import AUTO_MAP, HybridGPTBERTConfig
from .losses import causal_lm_loss, linear_cross_entropy

SHARED_EMBEDDING = "embed_tokens.weight"
ENCODER_EMBEDDING = "encoder.embeddings.word_embeddings.weight"
DECODER_EMBEDDING = "decoder.wte.weight"
TASKS = ("both", "mlm", "clm")
# The layer class of each stack, by `encoder_position_embeddings` for the encoder (FSDP wraps these; see post_init).
ENCODER_LAYER_CLASSES = {"absolute": "BertLayer", "rotary": "RoFormerLayer"}
DECODER_LAYER_CLASS = "GPT2Block"


@dataclass
class HybridGPTBERTOutput(ModelOutput):
    """Output of the pretraining forward: the weighted loss, both partial losses and both logits."""

    loss: torch.FloatTensor | None = None
    mlm_loss: torch.FloatTensor | None = None
    clm_loss: torch.FloatTensor | None = None
    mlm_logits: torch.FloatTensor | None = None
    clm_logits: torch.FloatTensor | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    decoder_last_hidden_state: torch.FloatTensor | None = None
    cache: object | None = None


class HybridGPTBERTPreTrainedModel(PreTrainedModel):
    """Builds the parts of the hybrid a head class asks for; weight init and shared-embedding plumbing."""

    config_class = HybridGPTBERTConfig
    base_model_prefix = "hybrid"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    # Replaced per instance by the layer classes it holds (see `post_init`).
    _no_split_modules = ["GPT2Block"]

    def _build(self, config: HybridGPTBERTConfig, encoder: bool, decoder: bool):
        """Create the shared embedding and the requested stacks, and declare which tensors are one and the same."""
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        encoder_layer = ENCODER_LAYER_CLASSES[config.encoder_position_embeddings]
        self._layer_classes = [encoder_layer] * encoder + [DECODER_LAYER_CLASS] * decoder
        tied = {}
        if encoder:
            if config.encoder_position_embeddings == "rotary":
                self.encoder = RoFormerModel(config.encoder_config())
            else:
                self.encoder = BertModel(config.encoder_config(), add_pooling_layer=False)
            self.encoder.embeddings.word_embeddings = self.embed_tokens
            tied[ENCODER_EMBEDDING] = SHARED_EMBEDDING
        if decoder:
            self.decoder = GPT2Model(config.decoder_config())
            self.decoder.wte = self.embed_tokens
            tied[DECODER_EMBEDDING] = SHARED_EMBEDDING
        # v5 dict-form tie map {target: source}: the shared matrix is stored once, as `embed_tokens.weight`.
        self._tied_weights_keys = tied

    def post_init(self):
        super().post_init()
        # accelerate's FSDP wrap (TRANSFORMER_BASED_WRAP with no class list) shards each class named here as one unit
        # and refuses a name it cannot find. Only the stacks' layers: the parent collected BertEmbeddings too, which
        # holds the shared token embedding, and that must stay in the root unit with the decoder and both heads.
        self._no_split_modules = set(self._layer_classes)
        # The shared matrix's other names are not saved; Trainer's checkpoint restores (best model, --resume) load
        # with strict=False and re-tie instead of warning only when the missing keys are exactly these.
        self._keys_to_ignore_on_save = list(self._tied_weights_keys)

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                nn.init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, new_embeddings):
        self.embed_tokens = new_embeddings
        if hasattr(self, "encoder"):
            self.encoder.embeddings.word_embeddings = new_embeddings
        if hasattr(self, "decoder"):
            self.decoder.wte = new_embeddings

    def _lm_head(self) -> nn.Linear:
        return nn.Linear(self.config.hidden_size, self.config.vocab_size, bias=False)

    def _tie_heads(self, *head_names: str):
        if self.config.tie_lm_heads:
            self._tied_weights_keys.update({f"{name}.weight": SHARED_EMBEDDING for name in head_names})

    def _masked_lm(self, hidden_states, labels=None, sparse: bool = False, **loss_kwargs):
        """(logits, loss) of the MLM head; with `sparse` and labels, only at the labelled (masked) positions, and in
        training with gradients the head and its cross-entropy chunk by chunk (no logits: None, the same loss)."""
        if labels is not None and sparse:
            labelled = labels != -100
            hidden_states, labels = hidden_states[labelled], labels[labelled]
            if self.training and torch.is_grad_enabled():
                return None, linear_cross_entropy(hidden_states, self.mlm_head.weight, labels,
                                                  loss_kwargs.get("num_items_in_batch"))
        logits = self.mlm_head(hidden_states)
        if labels is None:
            return logits, None
        return logits, ForMaskedLMLoss(logits, labels, vocab_size=self.config.vocab_size, **loss_kwargs)

    def _causal_lm(self, hidden_states, labels=None, **loss_kwargs):
        """(logits, loss) of the CLM head; the labels are shifted inside the loss."""
        logits = self.clm_head(hidden_states)
        if labels is None:
            return logits, None
        return logits, ForCausalLMLoss(logits, labels, vocab_size=self.config.vocab_size, **loss_kwargs)

    def _encode(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, **kwargs):
        if position_ids is not None:
            if self.config.encoder_position_embeddings == "rotary":
                raise ValueError("the rotary encoder takes no position_ids (positions are the token order)")
            kwargs["position_ids"] = position_ids
        return self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, **kwargs
        ).last_hidden_state


class HybridGPTBERTForPreTraining(HybridGPTBERTPreTrainedModel):
    """The whole hybrid with both heads; `forward` computes `α·mlm_loss + β·clm_loss` for pretraining."""

    # Two objectives with different label sets: each partial loss is a token mean, so Trainer must not pass one
    # `num_items_in_batch` for both (it then scales the loss for gradient accumulation itself).
    accepts_loss_kwargs = False

    def __init__(self, config: HybridGPTBERTConfig):
        super().__init__(config)
        self._build(config, encoder=True, decoder=True)
        self.mlm_head = self._lm_head()
        self.clm_head = self._lm_head()
        self._tie_heads("mlm_head", "clm_head")
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        mlm_input_ids: torch.LongTensor | None = None,
        mlm_labels: torch.LongTensor | None = None,
        task: str = "both",
        token_type_ids: torch.LongTensor | None = None,
        cache=None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> HybridGPTBERTOutput:
        r"""
        input_ids: the clean sequence, read by the causal decoder (and by the encoder when `mlm_input_ids` is None).
        labels: causal LM labels (usually `input_ids` with padding set to -100; shifted inside).
        mlm_input_ids: the MASKED copy read by the encoder. Required with `mlm_labels`: feeding the encoder the
            clean sequence would let it copy its answers.
        mlm_labels: masked LM labels (-100 everywhere but at masked positions).
        task: "both" (default), "mlm" (encoder branch only) or "clm" (decoder branch only).
        """
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if mlm_labels is not None and mlm_input_ids is None and task != "clm":
            raise ValueError("mlm_labels given without mlm_input_ids: the encoder must read the masked copy")
        out = HybridGPTBERTOutput()
        weighted = []
        if task in ("both", "mlm"):
            encoder_input = mlm_input_ids if mlm_input_ids is not None else input_ids
            out.encoder_last_hidden_state = self._encode(encoder_input, attention_mask, token_type_ids)
            out.mlm_logits, out.mlm_loss = self._masked_lm(out.encoder_last_hidden_state, mlm_labels,
                                                           sparse=self.config.sparse_prediction)
            if out.mlm_loss is not None:
                weighted.append(self.config.mlm_loss_weight * out.mlm_loss)
        if task in ("both", "clm"):
            decoded = self.decoder(
                input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=use_cache
            )
            out.decoder_last_hidden_state = decoded.last_hidden_state
            out.cache = decoded.cache
            if labels is not None and self.training and torch.is_grad_enabled():
                # The CLM head and its cross-entropy chunk by chunk (no logits kept): the same loss, less memory.
                out.clm_loss = causal_lm_loss(out.decoder_last_hidden_state, self.clm_head.weight, labels)
            else:
                out.clm_logits, out.clm_loss = self._causal_lm(out.decoder_last_hidden_state, labels)
            if out.clm_loss is not None:
                weighted.append(self.config.clm_loss_weight * out.clm_loss)
        if weighted:
            out.loss = torch.stack(weighted).sum()
        return out


# The name this class was saved under until 0.1.0 (`architectures` and `auto_map` of older folders).
HybridGPTBERTModel = HybridGPTBERTForPreTraining


class HybridGPTBERTBranchLM(HybridGPTBERTPreTrainedModel):
    """One branch with its own LM head: the decoder and `clm_head`, or the encoder and `mlm_head`."""

    branch = "clm"  # "clm" (decoder) or "mlm" (encoder)

    def __init__(self, config: HybridGPTBERTConfig):
        super().__init__(config)
        self._build(config, encoder=self.branch == "mlm", decoder=self.branch == "clm")
        setattr(self, f"{self.branch}_head", self._lm_head())
        self._tie_heads(f"{self.branch}_head")
        self.post_init()

    def get_output_embeddings(self):
        return getattr(self, f"{self.branch}_head")

    def set_output_embeddings(self, new_embeddings):
        setattr(self, f"{self.branch}_head", new_embeddings)


class HybridGPTBERTForCausalLM(HybridGPTBERTBranchLM, GenerationMixin):
    """The decoder branch (shared embedding → GPT-2 stack → CLM head), for `generate` and text-generation."""

    branch = "clm"
    # The encoder half of a full checkpoint is not needed here.
    _keys_to_ignore_on_load_unexpected = [r"^encoder\.", r"^mlm_head\."]

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
        decoded = self.decoder(input_ids=input_ids, cache=cache, attention_mask=attention_mask,
                               position_ids=position_ids, inputs_embeds=inputs_embeds, use_cache=use_cache)
        # Generation needs only the last positions' logits; slicing first saves the vocabulary projection.
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits, loss = self._causal_lm(decoded.last_hidden_state[:, keep, :], labels, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=decoded.cache)


class HybridGPTBERTForMaskedLM(HybridGPTBERTBranchLM):
    """The encoder branch (shared embedding → BERT stack → MLM head), for fill-mask and pseudo-likelihoods."""

    branch = "mlm"
    _keys_to_ignore_on_load_unexpected = [r"^decoder\.", r"^clm_head\."]

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        hidden_states = self._encode(input_ids, attention_mask, token_type_ids, position_ids)
        logits, loss = self._masked_lm(hidden_states, labels, sparse=False, **kwargs)  # dense: fill-mask, PLL
        return MaskedLMOutput(loss=loss, logits=logits)


class HybridGPTBERTEncoderClassifier(HybridGPTBERTPreTrainedModel):
    """Shared body of the classification heads: encoder states → dropout → linear layer."""

    _keys_to_ignore_on_load_unexpected = [r"^decoder\.", r"^clm_head\.", r"^mlm_head\."]

    def __init__(self, config: HybridGPTBERTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self._build(config, encoder=True, decoder=False)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    per_sequence = True  # one label per sequence (read at the leading [CLS]), else one per token
    output_class = SequenceClassifierOutput

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ):
        hidden_states = self._encode(input_ids, attention_mask, token_type_ids, position_ids)
        logits = self.classifier(self.dropout(hidden_states[:, 0] if self.per_sequence else hidden_states))
        loss = None
        if labels is not None:  # transformers' sequence loss takes (labels, logits), its token loss (logits, labels)
            pair = (labels, logits) if self.per_sequence else (logits, labels)
            loss = self.loss_function(*pair, self.config, **kwargs)
        return self.output_class(loss=loss, logits=logits)


class HybridGPTBERTForSequenceClassification(HybridGPTBERTEncoderClassifier):
    """Encoder state at the leading [CLS] → dropout → linear classifier (BERT's recipe, without the pooler)."""

    per_sequence = True
    output_class = SequenceClassifierOutput


class HybridGPTBERTForTokenClassification(HybridGPTBERTEncoderClassifier):
    """Encoder state of every token → dropout → linear tagger (POS, NER)."""

    per_sequence = False
    output_class = TokenClassifierOutput


# `save_pretrained` copies this file and its sibling next to the weights for the classes registered here; the
# config's AUTO_MAP (written out in full) names every Auto class, so each class is registered once.
for _auto_class, _target in AUTO_MAP.items():
    _model_class = globals().get(_target.rsplit(".", 1)[1])
    if _auto_class != "AutoConfig" and "_auto_class" not in vars(_model_class):
        _model_class.register_for_auto_class(_auto_class)

__all__ = [
    "HybridGPTBERTOutput",
    "HybridGPTBERTPreTrainedModel",
    "HybridGPTBERTForPreTraining",
    "HybridGPTBERTModel",
    "HybridGPTBERTBranchLM",
    "HybridGPTBERTForCausalLM",
    "HybridGPTBERTForMaskedLM",
    "HybridGPTBERTEncoderClassifier",
    "HybridGPTBERTForSequenceClassification",
    "HybridGPTBERTForTokenClassification",
]
