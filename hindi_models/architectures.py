"""The one registry of architectures: what the package and the pipeline know about gpt, bert, the hybrid and gpt_bert.

Each `Architecture` says how it is built from a preset, which collator trains it, how it is scored, which Auto
classes serve it, which layer classes FSDP wraps and what its model card says. The CLI choices, the comparison
loop, the report, the cards, `detect_kinds`, `_no_split_modules` and the in-process Auto registration all read
from here. Adding an architecture = its flat `configuration_x.py` / `modeling_x.py` pair + one entry below.

The remote-code files (`configuration_hybrid.py` / `modeling_hybrid.py`, `configuration_gpt_bert.py` /
`modeling_gpt_bert.py`) stay self-contained and do not import this module; `tests/test_architectures.py` checks
that their `AUTO_MAP` and layer classes equal the entries here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from transformers import BertForMaskedLM, GPT2LMHeadModel, PreTrainedConfig, RoFormerForMaskedLM

from . import modeling_gpt_bert, modeling_hybrid
from .configuration_gpt_bert import GPTBERTConfig
from .configuration_hybrid import ENCODER_POSITION_EMBEDDINGS, HybridGPTBERTConfig
from .scoring import KINDS  # noqa: F401 (the kinds an evaluation section may have)



@dataclass(frozen=True)
class Variant:
    """What changes with the preset's `encoder_position_embeddings`: the saved model, its FSDP units, its card."""

    model_type: str  # `model_type` in the saved config.json
    model_class: type  # the class `build_model` instantiates
    layer_classes: tuple[str, ...]  # FSDP wrap units (`_no_split_modules`)
    card_title: str
    card_description: str


@dataclass(frozen=True)
class Architecture:
    """One architecture of the comparison, by its CLI / preset name."""

    name: str  # `--model-type`, preset `model_type`, run sub-folder
    title: str  # one line, printed when a model is created
    objective: str  # report text; `{mlm_probability}`, `{mlm_loss_weight}`, `{clm_loss_weight}`, `{causal_fraction}`
    collator: str  # `training.collators` kind: "causal", "masked", "causal+masked" (both copies of every example)
    #                or "causal|masked" (each example one or the other)
    sections: Mapping[str, str]  # evaluation sections {name: kind in KINDS}
    config: Callable[[HybridGPTBERTConfig], PreTrainedConfig]  # the config from the preset's shared shape
    variants: Mapping[str, Variant]  # by encoder_position_embeddings
    loader: str  # the transformers Auto class that loads the whole pretrained model
    pipeline_tag: str
    usage: str  # the card's code example; `{repo}` is the repo id
    tokenizer_template: str  # the saved folder's post-processor: "causal" ([CLS] text) or "document" (+ [SEP])
    auto_classes: Mapping[str, type] = field(default_factory=dict)  # remote code: Auto class name -> class
    config_class: type | None = None  # remote code: the config class registered with AutoConfig

    @property
    def remote_code(self) -> bool:
        """True when the saved folder needs its own Python files (`trust_remote_code=True`)."""
        return bool(self.auto_classes)

    @property
    def generates(self) -> bool:
        """True when the architecture has a causal side that `generate` can sample from."""
        return "causal" in self.sections.values()

    @property
    def causal_only(self) -> bool:
        """True when every side is causal (GPT): its task heads see only the left context of a position."""
        return set(self.sections.values()) == {"causal"}

    def variant(self, encoder_position_embeddings: str) -> Variant:
        if encoder_position_embeddings not in self.variants:
            raise ValueError(f"encoder_position_embeddings must be one of {ENCODER_POSITION_EMBEDDINGS}, "
                             f"got {encoder_position_embeddings!r}")
        return self.variants[encoder_position_embeddings]

    def describe_objective(self, mlm_probability: float, mlm_loss_weight: float, clm_loss_weight: float,
                           causal_fraction: float = 0.0) -> str:
        """The objective as trained, e.g. "masked LM (15%, 80/10/10)" or "0.5·MLM + 0.5·CLM"."""
        return self.objective.format(mlm_probability=mlm_probability, mlm_loss_weight=mlm_loss_weight,
                                     clm_loss_weight=clm_loss_weight, causal_fraction=causal_fraction)


def _every_position(variant: Variant) -> dict[str, Variant]:
    """The same variant whatever the encoder positions (architectures without an encoder)."""
    return {positions: variant for positions in ENCODER_POSITION_EMBEDDINGS}


_FILL_MASK = 'from transformers import pipeline\n\nfill = pipeline("fill-mask", model="{repo}")\n' \
             'print(fill("भारत एक विशाल [MASK] है।"))'
_HYBRID = modeling_hybrid.HybridGPTBERTForPreTraining
# The stacks' layer classes (stock BertLayer / RoFormerLayer / GPT2Block), named where the hybrid builds them.
_ENCODER_LAYERS, _DECODER_LAYER = modeling_hybrid.ENCODER_LAYER_CLASSES, modeling_hybrid.DECODER_LAYER_CLASS
_HYBRID_TEXT = ("GPT+BERT hybrid (shared embedding, {encoder} encoder + GPT-2 decoder)",
                "A GPT+BERT hybrid (one token embedding shared by a bidirectional encoder{with_positions} with an MLM "
                "head and a causal decoder with a CLM head, trained on `α·mlm + β·clm`)")

ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture(
            name="gpt", title="GPT-2 style (causal LM)", objective="causal LM", collator="causal",
            sections={"causal": "causal"}, config=lambda shape: shape.decoder_config(),
            variants=_every_position(Variant(
                "gpt2", GPT2LMHeadModel, (_DECODER_LAYER,),
                "GPT-2 style causal language model", "A GPT-2 style causal language model")),
            loader="AutoModelForCausalLM", pipeline_tag="text-generation", tokenizer_template="causal",
            usage='from transformers import pipeline\n\ngenerate = pipeline("text-generation", model="{repo}")\n'
                  'print(generate("भारत एक", max_new_tokens=30, do_sample=True, temperature=0.8, top_k=50, '
                  'top_p=0.95))',
        ),
        Architecture(
            name="bert", title="BERT style (masked LM)", objective="masked LM ({mlm_probability:.0%}, 80/10/10)",
            collator="masked", sections={"masked": "masked"}, config=lambda shape: shape.encoder_config(),
            variants={
                "absolute": Variant("bert", BertForMaskedLM, (_ENCODER_LAYERS["absolute"],),
                                    "BERT style masked language model", "A BERT style masked language model"),
                "rotary": Variant(
                    "roformer", RoFormerForMaskedLM, (_ENCODER_LAYERS["rotary"],),
                    "BERT style masked language model with rotary positions (RoFormer)",
                    "A BERT style masked language model with rotary position embeddings (stock RoFormer)"),
            },
            loader="AutoModelForMaskedLM", pipeline_tag="fill-mask", usage=_FILL_MASK,
            tokenizer_template="document",
        ),
        Architecture(
            name="hybrid", title="GPT+BERT hybrid", objective="{mlm_loss_weight:g}·MLM + {clm_loss_weight:g}·CLM",
            collator="causal+masked", sections={"decoder": "causal", "encoder": "masked"}, config=lambda shape: shape,
            variants={
                "absolute": Variant(
                    "hybrid_gpt_bert", _HYBRID, (_ENCODER_LAYERS["absolute"], _DECODER_LAYER),
                    _HYBRID_TEXT[0].format(encoder="BERT"), _HYBRID_TEXT[1].format(with_positions="")),
                "rotary": Variant(
                    "hybrid_gpt_bert", _HYBRID, (_ENCODER_LAYERS["rotary"], _DECODER_LAYER),
                    _HYBRID_TEXT[0].format(encoder="RoFormer (rotary BERT)"),
                    _HYBRID_TEXT[1].format(with_positions=" with rotary positions")),
            },
            # One folder serves generation (the pipeline task) and the encoder: prompts stay open; the scorers and
            # the training data place [SEP] themselves.
            loader="AutoModel", pipeline_tag="text-generation", tokenizer_template="causal",
            usage='from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer\n\n'
                  'repo = "{repo}"\n'
                  '# the tokenizer is stock: it needs no remote code\n'
                  'tokenizer = AutoTokenizer.from_pretrained(repo, trust_remote_code=False)\n'
                  '# generation through the decoder (from the Hub, add revision="<commit sha>", see below)\n'
                  'decoder = AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True)\n'
                  'prompt = tokenizer("भारत एक", return_tensors="pt")\n'
                  'output = decoder.generate(**prompt, max_new_tokens=30, do_sample=True, top_k=50)\n'
                  'print(tokenizer.decode(output[0], skip_special_tokens=True))\n'
                  '# understanding through the encoder\n'
                  'encoder = AutoModelForMaskedLM.from_pretrained(repo, trust_remote_code=True)',
            auto_classes={
                "AutoModel": _HYBRID,
                "AutoModelForPreTraining": _HYBRID,
                "AutoModelForCausalLM": modeling_hybrid.HybridGPTBERTForCausalLM,
                "AutoModelForMaskedLM": modeling_hybrid.HybridGPTBERTForMaskedLM,
                "AutoModelForSequenceClassification": modeling_hybrid.HybridGPTBERTForSequenceClassification,
                "AutoModelForTokenClassification": modeling_hybrid.HybridGPTBERTForTokenClassification,
            },
            config_class=HybridGPTBERTConfig,
        ),
        Architecture(
            name="gpt_bert", title="GPT-BERT (one GPT-2 stack: causal LM + masked next-token prediction)",
            objective="causal LM on {causal_fraction:.1%} of rows + masked next-token prediction "
                      "({mlm_probability:.0%}, 80/10/10)",
            collator="causal|masked", sections={"causal": "causal", "masked": "masked"},
            # The project's GPT of the preset, as a GPT-BERT: the same stack, so the same parameters.
            config=lambda shape: GPTBERTConfig.from_gpt2_config(
                shape.decoder_config(), cls_token_id=shape.cls_token_id, sep_token_id=shape.sep_token_id,
                mask_token_id=shape.mask_token_id),
            variants=_every_position(Variant(
                "gpt_bert", modeling_gpt_bert.GPTBERTForPreTraining, (modeling_gpt_bert.LAYER_CLASS,),
                "GPT-BERT (one GPT-2 stack, causal and masked next-token prediction)",
                "A GPT-BERT (Charpentier & Samuel 2024): one GPT-2 stack trained on a mix of causal examples (causal "
                "attention) and masked examples (bidirectional attention, masked next-token prediction), both read "
                "from one head tied to the token embedding")),
            # Generation is the pipeline task, so prompts stay open; the scorers place [SEP] themselves.
            loader="AutoModelForPreTraining", pipeline_tag="text-generation", tokenizer_template="causal",
            usage='from transformers import pipeline\n\n'
                  'repo = "{repo}"  # from the Hub, add revision="<commit sha>" (the folder runs its own code)\n'
                  '# the causal mode generates\n'
                  'generate = pipeline("text-generation", model=repo, trust_remote_code=True)\n'
                  'print(generate("भारत एक", max_new_tokens=30, do_sample=True, temperature=0.8, top_k=50, '
                  'top_p=0.95))\n'
                  '# the bidirectional mode fills masks\n'
                  'fill = pipeline("fill-mask", model=repo, trust_remote_code=True)\n'
                  'print(fill("भारत एक विशाल [MASK] है।"))',
            auto_classes={
                "AutoModel": modeling_gpt_bert.GPTBERTModel,
                "AutoModelForPreTraining": modeling_gpt_bert.GPTBERTForPreTraining,
                "AutoModelForCausalLM": modeling_gpt_bert.GPTBERTForCausalLM,
                "AutoModelForMaskedLM": modeling_gpt_bert.GPTBERTForMaskedLM,
                "AutoModelForSequenceClassification": modeling_gpt_bert.GPTBERTForSequenceClassification,
                "AutoModelForTokenClassification": modeling_gpt_bert.GPTBERTForTokenClassification,
            },
            config_class=GPTBERTConfig,
        ),
    )
}


def architecture_names() -> tuple[str, ...]:
    """The registry's names, in comparison order (read at call time, so an added entry is seen everywhere)."""
    return tuple(ARCHITECTURES)


def saved_model_types() -> tuple[str, ...]:
    """Every `model_type` a folder saved by this project may have."""
    return tuple(sorted({v.model_type for a in ARCHITECTURES.values() for v in a.variants.values()}))


def get_architecture(name: str) -> Architecture:
    """The registry entry of `name` (`gpt`, `bert`, `hybrid`, `gpt_bert`), or a ValueError listing the known names."""
    if name not in ARCHITECTURES:
        raise ValueError(f"model_type={name!r} is not one of {architecture_names()}")
    return ARCHITECTURES[name]


def architecture_of(config) -> tuple[Architecture, Variant] | None:
    """(architecture, variant) of a saved config (object or dict) from its `model_type`; None for a model this
    project does not build. Where several variants save one model_type, `encoder_position_embeddings` decides."""
    get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
    found = [(arch, positions, variant) for arch in ARCHITECTURES.values()
             for positions, variant in arch.variants.items() if variant.model_type == get("model_type")]
    if not found:
        return None
    positions = get("encoder_position_embeddings", "absolute")
    arch, _, variant = next((f for f in found if f[1] == positions), found[0])
    return arch, variant


def register_auto_classes() -> None:
    """Register the remote-code architectures with the transformers Auto classes in this process, so their saved
    folders load without `trust_remote_code` once `hindi_models` is imported."""
    import transformers

    for arch in ARCHITECTURES.values():
        if arch.remote_code:
            transformers.AutoConfig.register(arch.config_class.model_type, arch.config_class, exist_ok=True)
            for auto_name, model_class in arch.auto_classes.items():
                getattr(transformers, auto_name).register(arch.config_class, model_class, exist_ok=True)
