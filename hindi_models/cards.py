"""Hub model cards rendered with `huggingface_hub.ModelCard` from the template in `templates/model_card.md`."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"
PIPELINE_TAGS = {"gpt2": "text-generation", "bert": "fill-mask", "roformer": "fill-mask",
                 "hybrid_gpt_bert": "text-generation"}
ARCHITECTURES = {
    "gpt2": ("GPT-2 style causal language model", "A GPT-2 style causal language model"),
    "bert": ("BERT style masked language model", "A BERT style masked language model"),
    "roformer": ("BERT style masked language model with rotary positions (RoFormer)",
                 "A BERT style masked language model with rotary position embeddings (stock RoFormer)"),
    "hybrid_gpt_bert": (
        "GPT+BERT hybrid (shared embedding, BERT encoder + GPT-2 decoder)",
        "A GPT+BERT hybrid (one token embedding shared by a bidirectional encoder with an MLM head and a "
        "causal decoder with a CLM head, trained on `α·mlm + β·clm`)",
    ),
    # the hybrid whose encoder uses rotary positions (`encoder_position_embeddings: rotary`)
    "hybrid_gpt_bert:rotary": (
        "GPT+BERT hybrid (shared embedding, RoFormer (rotary BERT) encoder + GPT-2 decoder)",
        "A GPT+BERT hybrid (one token embedding shared by a bidirectional encoder with rotary positions and an MLM "
        "head and a causal decoder with a CLM head, trained on `α·mlm + β·clm`)",
    ),
}
USAGE = {
    "gpt2": 'from transformers import pipeline\n\ngenerate = pipeline("text-generation", model="{repo}")\n'
    'print(generate("भारत एक", max_new_tokens=30, do_sample=True, temperature=0.8, top_k=50, top_p=0.95))',
    "bert": 'from transformers import pipeline\n\nfill = pipeline("fill-mask", model="{repo}")\n'
    'print(fill("भारत एक विशाल [MASK] है।"))',
    "roformer": 'from transformers import pipeline\n\nfill = pipeline("fill-mask", model="{repo}")\n'
    'print(fill("भारत एक विशाल [MASK] है।"))',
    "hybrid_gpt_bert": 'from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer\n\n'
    'tokenizer = AutoTokenizer.from_pretrained("{repo}")\n'
    '# generation through the decoder, understanding through the encoder\n'
    'decoder = AutoModelForCausalLM.from_pretrained("{repo}", trust_remote_code=True, revision="<commit sha>")\n'
    'encoder = AutoModelForMaskedLM.from_pretrained("{repo}", trust_remote_code=True, revision="<commit sha>")',
}


def _flatten_metrics(metrics: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten_metrics(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
    return flat


# Which task and data a metric name belongs to (first matching fragment wins); the rest is held-out text.
METRIC_TASKS = (
    ("minimal_pairs", "minimal pairs (BLiMP style)", "bhs_hindi_minimal_pairs"),
    ("finetune/pos", "token-classification", "UD Hindi-HDTB UPOS"),
    ("finetune/ner", "token-classification", "IL-NER Hindi"),
    ("finetune/bbc_topic", "text-classification", "MIDAS BBC Hindi topic"),
    ("finetune/iitp_sentiment", "text-classification", "MIDAS IITP product-review sentiment"),
    ("mlm", "fill-mask", "held-out Hindi"),
    ("pseudo", "fill-mask", "held-out Hindi"),
    ("encoder/", "fill-mask", "held-out Hindi"),
)


def _result_task(metric: str, model_type: str) -> dict:
    """`EvalResult` task/dataset fields for one metric name."""
    for fragment, task, dataset in METRIC_TASKS:
        if fragment in metric:
            return {"task_type": task, "dataset_type": "hindi", "dataset_name": dataset}
    return {"task_type": PIPELINE_TAGS[model_type], "dataset_type": "hindi", "dataset_name": "held-out Hindi"}


def render_model_card(config, *, repo_id: str | None = None, metrics: dict | None = None,
                      training_data: str = "not recorded", training_budget: str = "not recorded",
                      parameters: int | None = None, datasets: list[str] | None = None,
                      license: str = "apache-2.0") -> ModelCard:
    """A `ModelCard` for a saved model config: YAML metadata (language hi, pipeline_tag, model-index) + text."""
    model_type = config.model_type
    if model_type not in ARCHITECTURES:
        raise ValueError(f"no model card template for model_type {model_type!r}")
    name = repo_id or getattr(config, "_name_or_path", "") or f"hindi-{model_type}"
    flat = _flatten_metrics(metrics)
    eval_results = [
        EvalResult(**_result_task(key, model_type), metric_type=key, metric_value=round(value, 4))
        for key, value in flat.items()
    ]
    card_data = ModelCardData(
        language="hi",
        license=license,
        library_name="transformers",
        pipeline_tag=PIPELINE_TAGS[model_type],
        tags=["hindi", "babylm", "hindi-models", model_type],
        datasets=datasets,
        model_name=name,
        eval_results=eval_results or None,
    )
    table = "\n".join(["| metric | value |", "|---|---|", *(f"| {k} | {v:.4g} |" for k, v in flat.items())])
    positions = getattr(config, "encoder_position_embeddings", "absolute")
    architecture, description = ARCHITECTURES.get(f"{model_type}:{positions}", ARCHITECTURES[model_type])
    shape = config.decoder_config() if model_type == "hybrid_gpt_bert" else config
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=name,
        architecture=architecture,
        architecture_description=description,
        parameters=f"{parameters:,}" if parameters else "see config.json",
        hidden_size=shape.hidden_size,
        num_layers=shape.num_hidden_layers,
        num_heads=shape.num_attention_heads,
        max_length=shape.max_position_embeddings,
        vocab_size=config.vocab_size,
        training_data=training_data,
        training_budget=training_budget,
        usage=USAGE[model_type].format(repo=name),
        remote_code=model_type == "hybrid_gpt_bert",
        hf_model_type=model_type,
        results_table=table if flat else "No evaluation recorded for this folder yet.",
    )
