"""Configuration of GPT-BERT: one GPT-2 stack trained on causal LM and masked next-token prediction (MNTP).

This file is copied next to the weights as remote code, so it imports only `transformers` and the standard library.
"""

import dataclasses

from transformers import GPT2Config

# Every Auto class GPT-BERT serves, written out in full so a saved folder resolves each one as remote code.
AUTO_MAP = {
    "AutoConfig": "configuration_gpt_bert.GPTBERTConfig",
    "AutoModel": "modeling_gpt_bert.GPTBERTModel",
    "AutoModelForPreTraining": "modeling_gpt_bert.GPTBERTForPreTraining",
    "AutoModelForCausalLM": "modeling_gpt_bert.GPTBERTForCausalLM",
    "AutoModelForMaskedLM": "modeling_gpt_bert.GPTBERTForMaskedLM",
    "AutoModelForSequenceClassification": "modeling_gpt_bert.GPTBERTForSequenceClassification",
    "AutoModelForTokenClassification": "modeling_gpt_bert.GPTBERTForTokenClassification",
}


class GPTBERTConfig(GPT2Config):
    r"""
    Configuration of [`GPTBERTForPreTraining`] ("GPT or BERT: why not both?", Charpentier & Samuel 2024): a GPT-2
    config, because the model IS a GPT-2 stack (`GPT2Block`s, learned positions, one head tied to the token
    embedding); what GPT-BERT adds is an attention mask chosen per example, causal or bidirectional. Every
    `GPT2Config` argument keeps its meaning (`hidden_size`, `num_hidden_layers`, `num_attention_heads` and
    `max_position_embeddings` are GPT-2's aliases of `n_embd`, `n_layer`, `n_head`, `n_positions`), plus:

    Args:
        classifier_dropout (`float`, *optional*): dropout before the classification heads (default: `resid_pdrop`).
        cls_token_id / sep_token_id / mask_token_id (`int`): the tokenizer's [CLS] (also BOS), [SEP] (also EOS) and
            [MASK]; pad/bos/eos default to this project's fixed ids 0/2/3, never GPT-2's 50256.
    """

    model_type = "gpt_bert"

    classifier_dropout: float | None = None
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: int | list[int] | None = 3
    cls_token_id: int | None = 2
    sep_token_id: int | None = 3
    mask_token_id: int | None = 4
    auto_map: dict | None = None

    def __post_init__(self, **kwargs):
        # Entries already present (e.g. "repo--module.Class" from the Hub) win over the local defaults.
        self.auto_map = {**AUTO_MAP, **(self.auto_map or {})}
        super().__post_init__(**kwargs)

    @classmethod
    def from_gpt2_config(cls, config: GPT2Config, **kwargs) -> "GPTBERTConfig":
        """The GPT-BERT of a GPT-2's shape, every GPT-2 value kept (e.g. of the project's GPT of one preset, so
        both have the same parameters); `kwargs` set the GPT-BERT values."""
        values = {f.name: getattr(config, f.name) for f in dataclasses.fields(GPT2Config)}
        return cls(**values, attn_implementation=config._attn_implementation, **kwargs)


GPTBERTConfig.register_for_auto_class("AutoConfig")

__all__ = ["AUTO_MAP", "GPTBERTConfig"]
