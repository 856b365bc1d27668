"""Hub model cards rendered with `huggingface_hub.ModelCard` from the template in `templates/model_card.md`."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .architectures import Architecture, architecture_of

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"


def _flatten_metrics(metrics: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten_metrics(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
    return flat


# Which task and data a metric name belongs to (first matching fragment wins); the rest is held-out text, under
# the task of its evaluation section's kind (a metric named `<section>/...`), else the model's pipeline task.
METRIC_TASKS = (
    ("minimal_pairs", "minimal pairs (BLiMP style)", "bhs_hindi_minimal_pairs"),
    ("finetune/pos", "token-classification", "UD Hindi-HDTB UPOS"),
    ("finetune/ner", "token-classification", "IL-NER Hindi"),
    ("finetune/bbc_topic", "text-classification", "MIDAS BBC Hindi topic"),
    ("finetune/iitp_sentiment", "text-classification", "MIDAS IITP product-review sentiment"),
    ("mlm", "fill-mask", "held-out Hindi"),
    ("pseudo", "fill-mask", "held-out Hindi"),
)
KIND_TASKS = {"causal": "text-generation", "masked": "fill-mask"}


def _result_task(metric: str, arch: Architecture) -> dict:
    """`EvalResult` task/dataset fields for one metric name."""
    for fragment, task, dataset in METRIC_TASKS:
        if fragment in metric:
            return {"task_type": task, "dataset_type": "hindi", "dataset_name": dataset}
    kind = arch.sections.get(metric.split("/", 1)[0])
    return {"task_type": KIND_TASKS.get(kind, arch.pipeline_tag), "dataset_type": "hindi",
            "dataset_name": "held-out Hindi"}


def render_model_card(config, *, repo_id: str | None = None, metrics: dict | None = None,
                      training_data: str = "not recorded", training_budget: str = "not recorded",
                      parameters: int | None = None, datasets: list[str] | None = None,
                      license: str = "apache-2.0") -> ModelCard:
    """A `ModelCard` for a saved model config: YAML metadata (language hi, pipeline_tag, model-index) + text."""
    model_type = config.model_type
    found = architecture_of(config)
    if found is None:
        raise ValueError(f"no model card template for model_type {model_type!r}")
    arch, variant = found
    name = repo_id or getattr(config, "_name_or_path", "") or f"hindi-{model_type}"
    flat = _flatten_metrics(metrics)
    eval_results = [
        EvalResult(**_result_task(key, arch), metric_type=key, metric_value=round(value, 4))
        for key, value in flat.items()
    ]
    card_data = ModelCardData(
        language="hi",
        license=license,
        library_name="transformers",
        pipeline_tag=arch.pipeline_tag,
        tags=["hindi", "babylm", "hindi-models", model_type],
        datasets=datasets,
        model_name=name,
        eval_results=eval_results or None,
    )
    table = "\n".join(["| metric | value |", "|---|---|", *(f"| {k} | {v:.4g} |" for k, v in flat.items())])
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=name,
        architecture=variant.card_title,
        architecture_description=variant.card_description,
        parameters=f"{parameters:,}" if parameters else "see config.json",
        hidden_size=config.hidden_size,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        max_length=config.max_position_embeddings,
        vocab_size=config.vocab_size,
        training_data=training_data,
        training_budget=training_budget,
        usage=arch.usage.format(repo=name),
        remote_code=arch.remote_code,
        hf_model_type=model_type,
        results_table=table if flat else "No evaluation recorded for this folder yet.",
    )
