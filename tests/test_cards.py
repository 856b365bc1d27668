"""Model cards: a `model-index` the Hub groups correctly, and the fields good Hub cards carry."""

import pytest
import yaml

from hindi_models.cards import render_model_card
from hindi_models.models import make_model_config
from hindi_models.presets import load_preset

METRICS = {
    "validation_clm_loss": 5.3, "causal/bits_per_char": 2.38, "causal/minimal_pairs_accuracy": 0.656,
    "finetune/pos_accuracy": 0.47, "finetune/ner_f1": 0.1, "finetune/bbc_topic_accuracy": 0.41,
    "finetune/bbc_topic_macro_f1": 0.1, "finetune/iitp_sentiment_accuracy": 0.56,
}


def metadata(card) -> dict:
    return yaml.safe_load(str(card).split("---")[1])


def tiny_config(model_type):
    return make_model_config(load_preset("tiny", model_type=model_type))


@pytest.fixture(scope="module")
def gpt_card():
    return render_model_card(tiny_config("gpt"), repo_id="hindi-gpt-tiny", metrics=METRICS, parameters=123,
                             datasets=["hindi-aesthetics-corpus"], hyperparameters={"learning_rate": 3e-4},
                             evaluation_data={"minimal pairs": "3,000 pairs"})


def test_model_index_gives_each_evaluation_set_its_own_dataset(gpt_card):
    results = metadata(gpt_card)["model-index"][0]["results"]
    by_dataset = {r["dataset"]["type"]: r for r in results}
    # The Hub groups by (task, dataset): one group per evaluation set, never NER under POS.
    assert set(by_dataset) == {"hindi-aesthetics-corpus", "bhs-hindi-minimal-pairs", "universal_dependencies",
                               "il-ner-hindi", "midas-bbc-hindi-topic", "midas-iitp-hindi-product-sentiment"}
    assert by_dataset["il-ner-hindi"]["task"]["type"] == "token-classification"
    assert [m["value"] for m in by_dataset["il-ner-hindi"]["metrics"]] == [0.1]
    assert by_dataset["universal_dependencies"]["dataset"]["config"] == "hi_hdtb"
    assert {m["type"] for m in by_dataset["midas-bbc-hindi-topic"]["metrics"]} == {"accuracy", "f1"}
    for result in results:
        assert result["task"]["type"] in {"text-generation", "fill-mask", "token-classification",
                                          "text-classification"}
        for metric in result["metrics"]:
            assert "/" not in metric["type"] and metric["name"], metric
    pairs = by_dataset["bhs-hindi-minimal-pairs"]["metrics"][0]
    assert pairs == {"type": "accuracy", "value": 0.656, "name": "minimal-pair accuracy (causal, log-probability)"}


def test_card_carries_datasets_widget_use_hyperparameters_and_citation(gpt_card):
    meta = metadata(gpt_card)
    assert meta["datasets"] == ["hindi-aesthetics-corpus"] and meta["widget"] == [{"text": "भारत एक"}]
    text = gpt_card.content
    for heading in ("## How to load", "## Intended use and limits", "## Training data and hyperparameters",
                    "## Evaluation", "## How to cite"):
        assert heading in text
    assert "`learning_rate`: 0.0003" in text and "`minimal pairs`: 3,000 pairs" in text
    assert '<your-namespace>/hindi-gpt-tiny' in text and "only `[CLS]`" in text


def test_fill_mask_card_widget_and_usage_put_no_space_token_before_mask(tokenizer):
    card = render_model_card(tiny_config("bert"), repo_id="hindi-bert-tiny")
    widget = metadata(card)["widget"][0]["text"]
    assert "[MASK]" in widget and widget in card.content  # the usage example masks the same sentence
    pieces = tokenizer.convert_ids_to_tokens(tokenizer(widget)["input_ids"])
    assert " " not in pieces and "[MASK]" in pieces


def test_unknown_fine_tuning_task_is_named():
    from hindi_models.architectures import ARCHITECTURES
    from hindi_models.cards import eval_result

    with pytest.raises(ValueError, match="'finetune/xnli_accuracy': unknown fine-tuning task"):
        eval_result("finetune/xnli_accuracy", 0.5, ARCHITECTURES["gpt"])


@pytest.mark.parametrize("model_type", ["gpt", "bert", "hybrid"])
def test_card_usage_runs_when_copied(saved_models, model_type, capsys):
    """The card's code block, with the repo name replaced by the saved folder, loads and generates or fills."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(saved_models[model_type] / "README.md")
    code = card.content.split("```python\n", 1)[1].split("```", 1)[0]
    name = card.data.model_name
    exec(code.replace(f'"{name}"', repr(str(saved_models[model_type]))), {})
    assert "भारत" in capsys.readouterr().out
