"""Configuration of the GPT+BERT hybrid: one token embedding, a bidirectional encoder and a causal decoder.

This file is copied next to the weights as remote code, so it imports only `transformers` and its siblings.
"""

from transformers import BertConfig, GPT2Config, PreTrainedConfig, RoFormerConfig

# Every Auto class the hybrid serves, written out in full so a saved folder resolves each one as remote code.
AUTO_MAP = {
    "AutoConfig": "configuration_hybrid.HybridGPTBERTConfig",
    "AutoModel": "modeling_hybrid.HybridGPTBERTForPreTraining",
    "AutoModelForPreTraining": "modeling_hybrid.HybridGPTBERTForPreTraining",
    "AutoModelForCausalLM": "modeling_hybrid.HybridGPTBERTForCausalLM",
    "AutoModelForMaskedLM": "modeling_hybrid.HybridGPTBERTForMaskedLM",
    "AutoModelForSequenceClassification": "modeling_hybrid.HybridGPTBERTForSequenceClassification",
    "AutoModelForTokenClassification": "modeling_hybrid.HybridGPTBERTForTokenClassification",
}
ENCODER_POSITION_EMBEDDINGS = ("absolute", "rotary")


class HybridGPTBERTConfig(PreTrainedConfig):
    r"""
    Configuration of [`HybridGPTBERTForPreTraining`]: a BERT encoder (masked LM head) and a GPT-2 decoder (causal LM head)
    of the same width that share ONE token embedding matrix; each stack keeps its own position embeddings.

    Args:
        vocab_size (`int`): size of the shared vocabulary (the tokenizer's, special tokens at ids 0-4).
        hidden_size (`int`): width of both stacks and of the shared embedding.
        num_hidden_layers (`int`): number of layers in EACH stack (the decoder's count is what generation caches).
        num_attention_heads (`int`): attention heads per layer; must divide `hidden_size`.
        intermediate_size (`int`): feed-forward width of both stacks.
        max_position_embeddings (`int`): longest sequence either stack accepts.
        hidden_dropout_prob / attention_probs_dropout_prob (`float`): dropout of both stacks.
        type_vocab_size (`int`): token-type (segment) vocabulary of the encoder, as in BERT.
        layer_norm_eps (`float`): encoder LayerNorm epsilon (BERT's 1e-12).
        decoder_layer_norm_epsilon (`float`): decoder LayerNorm epsilon (GPT-2's 1e-5).
        initializer_range (`float`): std of the normal initialisation.
        mlm_loss_weight / clm_loss_weight (`float`): `loss = mlm_loss_weight * mlm_loss + clm_loss_weight * clm_loss`.
        tie_lm_heads (`bool`): tie the MLM and CLM output heads to the shared embedding (untied by default,
            as in the original design; untied heads add 2 x vocab x hidden parameters).
        tie_word_embeddings (`bool`): must stay `True`: it is what makes transformers share the encoder's and the
            decoder's token embedding through `_tied_weights_keys`.
        classifier_dropout (`float`, *optional*): dropout before classification heads (defaults to hidden dropout).
        sparse_prediction (`bool`): when `mlm_labels` are given, apply the MLM head only at the labelled (masked)
            positions, so `mlm_logits` has shape `(n_masked, vocab_size)` (as ModernBERT's option of that name);
            saves the head's matmul and softmax over the ~85% unmasked positions in pretraining.
        encoder_position_embeddings (`str`): "absolute" (default: a stock BERT encoder with learned positions) or
            "rotary" (a stock RoFormer encoder: BERT with rotary position embeddings, which learns the masked
            objective faster at small budgets; see BENCHMARKS.md). The decoder always has GPT-2's positions.
    """

    model_type = "hybrid_gpt_bert"
    attribute_map = {"n_positions": "max_position_embeddings", "n_layer": "num_hidden_layers"}

    vocab_size: int = 32000
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    decoder_layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    mlm_loss_weight: float = 0.5
    clm_loss_weight: float = 0.5
    tie_lm_heads: bool = False
    classifier_dropout: float | None = None
    encoder_position_embeddings: str = "absolute"
    sparse_prediction: bool = False
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: int | None = 3
    cls_token_id: int | None = 2
    sep_token_id: int | None = 3
    mask_token_id: int | None = 4
    use_cache: bool = True
    tie_word_embeddings: bool = True
    auto_map: dict | None = None

    def __post_init__(self, **kwargs):
        # Entries already present (e.g. "repo--module.Class" from the Hub) win over the local defaults.
        self.auto_map = {**AUTO_MAP, **(self.auto_map or {})}
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Refuse shapes the attention layers cannot build, naming the values at fault."""
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) is not divisible by num_attention_heads ({self.num_attention_heads})"
            )
        if self.encoder_position_embeddings not in ENCODER_POSITION_EMBEDDINGS:
            raise ValueError(
                f"encoder_position_embeddings must be one of {ENCODER_POSITION_EMBEDDINGS}, "
                f"got {self.encoder_position_embeddings!r}"
            )
        if not self.tie_word_embeddings:
            raise ValueError("tie_word_embeddings must be True: the encoder and decoder share one token embedding")

    def encoder_config(self) -> BertConfig | RoFormerConfig:
        """The encoder stack's config (also the standalone BERT of the same preset): a `BertConfig`, or with
        `encoder_position_embeddings="rotary"` a `RoFormerConfig` (BERT with rotary positions)."""
        shape = dict(
            **self._shared_stack_values(),
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_act="gelu",
            hidden_dropout_prob=self.hidden_dropout_prob,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            layer_norm_eps=self.layer_norm_eps,
        )
        if self.encoder_position_embeddings == "rotary":
            # RoFormer's attention exists only in the eager form in transformers.
            return RoFormerConfig(**shape, embedding_size=self.hidden_size, attn_implementation="eager")
        return BertConfig(**shape, classifier_dropout=self.classifier_dropout,
                          attn_implementation=self._attn_implementation)

    def decoder_config(self) -> GPT2Config:
        """The `GPT2Config` of the decoder stack (also the standalone GPT of the same preset)."""
        return GPT2Config(
            **self._shared_stack_values(),
            # GPT-2's own names for the same shape
            n_positions=self.max_position_embeddings, n_embd=self.hidden_size, n_layer=self.num_hidden_layers,
            n_head=self.num_attention_heads, n_inner=self.intermediate_size, activation_function="gelu_pytorch_tanh",
            resid_pdrop=self.hidden_dropout_prob, embd_pdrop=self.hidden_dropout_prob,
            attn_pdrop=self.attention_probs_dropout_prob,
            layer_norm_epsilon=self.decoder_layer_norm_epsilon,
            use_cache=self.use_cache,
            attn_implementation=self._attn_implementation,
        )

    def _shared_stack_values(self) -> dict:
        """What the encoder's and the decoder's configs take over unchanged: vocabulary, init, special ids."""
        return dict(vocab_size=self.vocab_size, initializer_range=self.initializer_range,
                    pad_token_id=self.pad_token_id, bos_token_id=self.bos_token_id, eos_token_id=self.eos_token_id)


HybridGPTBERTConfig.register_for_auto_class("AutoConfig")

__all__ = ["AUTO_MAP", "HybridGPTBERTConfig"]
