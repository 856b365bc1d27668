"""Hub model cards rendered with `huggingface_hub.ModelCard` from the template in `templates/model_card.md`.

The `model-index` gives every evaluation set its own `dataset.type`, because the Hub groups results by
(task, dataset): with one shared type, NER F1 would be shown under POS and sentiment under topic.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .architectures import Architecture, architecture_of

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"

# Evaluation sets: Hub-style dataset type (an id, unique per set), display name, split.
DATASETS = {
    "held_out": ("hindi-aesthetics-corpus", "Hindi aesthetics corpus (held-out text)", "validation"),
    "minimal_pairs": ("bhs-hindi-minimal-pairs", "BHS Hindi minimal pairs", "public"),
    "pos": ("universal_dependencies", "UD Hindi-HDTB 2015 (UPOS)", "test.public"),
    "ner": ("il-ner-hindi", "IL-NER Hindi", "test"),
    "bbc_topic": ("midas-bbc-hindi-topic", "MIDAS BBC Hindi news topic", "test"),
    "iitp_sentiment": ("midas-iitp-hindi-product-sentiment", "MIDAS IITP Hindi product-review sentiment", "test"),
}
DATASET_CONFIGS = {"pos": "hi_hdtb"}
# Fine-tuning tasks as `finetune/<task>_<metric>`: the Hub task id of each.
FINETUNE_TASKS = {"pos": "token-classification", "ner": "token-classification",
                  "bbc_topic": "text-classification", "iitp_sentiment": "text-classification"}
# Metric suffix -> (Hub metric id, display name).
METRICS = {
    "validation_clm_loss": ("loss", "validation CLM loss (nats/token)"),
    "validation_mlm_loss": ("loss", "validation MLM loss (nats/masked token)"),
    "pseudo_bits_per_char": ("bits_per_char", "pseudo-bits per character (PLL)"),
    "bits_per_char": ("bits_per_char", "bits per character"),
    "minimal_pairs_accuracy": ("accuracy", "minimal-pair accuracy"),
    "macro_f1": ("f1", "macro-F1"),
    "accuracy": ("accuracy", "accuracy"),
    "f1": ("f1", "entity F1 (seqeval)"),
}
KIND_TASKS = {"causal": "text-generation", "masked": "fill-mask"}
KIND_SCORES = {"causal": "log-probability", "masked": "pseudo-log-likelihood"}
WIDGETS = {"text-generation": [{"text": "भारत एक"}], "fill-mask": [{"text": "भारत एक विशाल [MASK] है।"}]}


def _flatten_metrics(metrics: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten_metrics(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
    return flat


def _metric(suffix: str) -> tuple[str, str]:
    """(Hub metric id, display name) of a metric name's last part; unknown names keep theirs, without slashes."""
    for known, entry in METRICS.items():
        if suffix.endswith(known):
            return entry
    return suffix.replace("/", "_"), suffix


def eval_result(key: str, value: float, arch: Architecture) -> EvalResult:
    """One `model-index` entry for a flat metric name: `finetune/<task>_<metric>`, `<section>/<metric>` (an
    evaluation section of the architecture) or a top-level name such as `validation_clm_loss`."""
    prefix, _, suffix = key.rpartition("/")
    task_type, dataset = arch.pipeline_tag, "held_out"
    metric_type, metric_name = _metric(suffix)
    if prefix == "finetune":
        dataset = next((task for task in FINETUNE_TASKS if suffix.startswith(f"{task}_")), None)
        if dataset is None:
            raise ValueError(f"metric {key!r}: unknown fine-tuning task (known: {', '.join(FINETUNE_TASKS)})")
        task_type = FINETUNE_TASKS[dataset]
    elif prefix in arch.sections:
        kind = arch.sections[prefix]
        task_type = KIND_TASKS[kind]
        dataset = "minimal_pairs" if "minimal_pairs" in suffix else "held_out"
        metric_name = f"{metric_name} ({prefix}, {KIND_SCORES[kind]})"
    elif suffix.startswith("validation_mlm"):
        task_type = "fill-mask"
    elif suffix.startswith("validation_clm"):
        task_type = "text-generation"
    dataset_type, dataset_name, split = DATASETS[dataset]
    return EvalResult(task_type=task_type, dataset_type=dataset_type, dataset_name=dataset_name,
                      dataset_config=DATASET_CONFIGS.get(dataset), dataset_split=split,
                      metric_type=metric_type, metric_name=metric_name, metric_value=round(value, 4))


def _bullets(mapping: dict | None) -> str:
    return "\n".join(f"- `{key}`: {value}" for key, value in (mapping or {}).items()) or "- not recorded"


def render_model_card(config, *, repo_id: str | None = None, metrics: dict | None = None,
                      training_data: str = "not recorded", training_budget: str = "not recorded",
                      parameters: int | None = None, datasets: list[str] | None = None,
                      hyperparameters: dict | None = None, evaluation_data: dict | None = None,
                      license: str = "apache-2.0") -> ModelCard:
    """A `ModelCard` for a saved model config: YAML metadata (language hi, pipeline_tag, widget, model-index with
    one dataset type per evaluation set) and the text a Hub user needs (loading, data, hyperparameters, limits,
    citation)."""
    model_type = config.model_type
    found = architecture_of(config)
    if found is None:
        raise ValueError(f"no model card template for model_type {model_type!r}")
    arch, variant = found
    name = repo_id or getattr(config, "_name_or_path", "") or f"hindi-{model_type}"
    flat = _flatten_metrics(metrics)
    eval_results = [eval_result(key, value, arch) for key, value in flat.items()]
    card_data = ModelCardData(
        language="hi",
        license=license,
        library_name="transformers",
        pipeline_tag=arch.pipeline_tag,
        tags=["hindi", "babylm", "hindi-models", model_type],
        datasets=datasets,
        model_name=name,
        eval_results=eval_results or None,
        widget=WIDGETS.get(arch.pipeline_tag),
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
        hyperparameters=_bullets(hyperparameters),
        evaluation_data=_bullets(evaluation_data),
        usage=arch.usage.format(repo=name),
        repo=name,
        pipeline_tag=arch.pipeline_tag,
        remote_code=arch.remote_code,
        hf_model_type=model_type,
        results_table=table if flat else "No evaluation recorded for this folder yet.",
    )
