"""Fine-tuning: loaders, first-sub-token labelling, metrics, and real (tiny) runs for GPT, BERT and the hybrid."""

import json

import numpy as np
import pytest

from training.finetune import finetune, main
from training.task_encoding import (
    IGNORE_INDEX,
    accuracy_and_macro_f1,
    encode_tagged,
    entity_f1,
    word_predictions,
    word_subtoken,
)
from training.tasks import (
    UD_V1_UPOS,
    bio_labels,
    load_classification_jsonl,
    load_conllu_upos,
    load_ner_jsonl,
    load_task,
)

CONLLU = """# sent_id = 1
# text = वह घर गया ।
1\tवह\tवह\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2-3\tघरगया\t_\t_\t_\t_\t_\t_\t_\t_
2\tघर\tघर\tNOUN\tNN\t_\t3\tobl\t_\t_
3\tगया\tजा\tVERB\tVM\t_\t0\troot\t_\t_
4\t।\t।\tPUNCT\tSYM\t_\t3\tpunct\t_\t_

1\tराम\tराम\tPROPN\tNNP\t_\t2\tnsubj\t_\t_
2\tआया\tआ\tVERB\tVM\t_\t0\troot\t_\t_
"""
# The first sentence of UD Hindi-HDTB 2015 dev (FORM and UPOS columns).
REAL_WORDS = ("रामायण काल में भगवान राम के पुत्र कुश की राजधानी कुशावती को 483 ईसा पूर्व बुद्ध ने अपने अंतिम विश्राम "
              "के लिए चुना ।").split()
REAL_TAGS = ("PROPN PROPN ADP NOUN PROPN ADP NOUN PROPN ADP NOUN PROPN ADP PROPN PROPN PROPN PROPN ADP PRON ADJ NOUN "
             "ADP ADP VERB PUNCT").split()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path, records):
    return write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


# --------------------------------------------------------------------------- loaders


def test_conllu_skips_comments_and_multiword_ranges(tmp_path):
    sentences = load_conllu_upos(write(tmp_path / "x.conllu", CONLLU))
    assert sentences == [
        {"tokens": ["वह", "घर", "गया", "।"], "tags": ["PRON", "NOUN", "VERB", "PUNCT"]},
        {"tokens": ["राम", "आया"], "tags": ["PROPN", "VERB"]},
    ]


def test_conllu_rejects_ud_v2_tag_naming_file_and_line(tmp_path):
    path = write(tmp_path / "v2.conllu", "1\tऔर\tऔर\tCCONJ\tCC\t_\t0\troot\t_\t_\n")
    with pytest.raises(ValueError, match=r"v2\.conllu:1: UPOS 'CCONJ'"):
        load_conllu_upos(path)


def test_ner_loader_repairs_and_checks(tmp_path):
    path = jsonl(tmp_path / "ner.jsonl", [{"tokens": ["राम", "दिल्ली", "गए"], "ner_tags": ["B-NEP", "-NEL", "-"]}])
    assert load_ner_jsonl(path) == [{"tokens": ["राम", "दिल्ली", "गए"], "tags": ["B-NEP", "B-NEL", "O"]}]
    bad = jsonl(tmp_path / "bad.jsonl", [{"tokens": ["a"], "ner_tags": ["O"]},
                                         {"tokens": ["a", "b"], "ner_tags": ["O"]}])
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: 2 tokens but 1 ner_tags"):
        load_ner_jsonl(bad)
    missing = jsonl(tmp_path / "missing.jsonl", [{"tokens": ["a"]}])
    with pytest.raises(ValueError, match=r"missing\.jsonl:1: missing field 'ner_tags'"):
        load_ner_jsonl(missing)
    assert bio_labels([{"tags": ["B-NEP", "O", "I-NEL"]}]) == ["O", "B-NEL", "I-NEL", "B-NEP", "I-NEP"]


def test_classification_loader_and_unknown_label(tmp_path):
    train = load_classification_jsonl(jsonl(tmp_path / "train.jsonl", [
        {"text": "अच्छा है", "label": "positive"}, {"text": "बुरा है", "label": "negative"}]))
    assert train[0] == {"text": "अच्छा है", "label": "positive"}
    labels = sorted({e["label"] for e in train})
    dev = jsonl(tmp_path / "dev.jsonl", [{"text": "ठीक", "label": "positive"},
                                         {"text": "पता नहीं", "label": "conflict"}])
    with pytest.raises(ValueError, match=r"dev\.jsonl:2: label 'conflict' is not in the train split's labels"):
        load_classification_jsonl(dev, labels)
    no_text = jsonl(tmp_path / "nt.jsonl", [{"label": "positive"}])
    with pytest.raises(ValueError, match=r"nt\.jsonl:1: missing field 'text'"):
        load_classification_jsonl(no_text)


# --------------------------------------------------------------------------- labelling and metrics


def test_first_subtoken_labelling_matches_word_ids(tokenizer):
    label2id = {tag: i for i, tag in enumerate(UD_V1_UPOS)}
    dataset, kept = encode_tagged(tokenizer, [{"tokens": REAL_WORDS, "tags": REAL_TAGS}], label2id, max_length=256)
    labels = dataset[0]["labels"]
    word_ids = tokenizer(REAL_WORDS, is_split_into_words=True).word_ids()
    assert len(labels) == len(word_ids) and labels[0] == labels[-1] == IGNORE_INDEX  # [CLS] ... [SEP]
    assert any(a == b is not None for a, b in zip(word_ids, word_ids[1:]))  # some word has several sub-tokens
    previous = None
    for word, label in zip(word_ids, labels):
        expected = IGNORE_INDEX if word is None or word == previous else label2id[REAL_TAGS[word]]
        assert label == expected
        previous = word
    assert kept == [list(range(len(REAL_WORDS)))]
    # Mapping predictions back to words: perfect predictions give the gold tags; truncated words are `missing`.
    short, kept_short = encode_tagged(tokenizer, [{"tokens": REAL_WORDS, "tags": REAL_TAGS}], label2id, max_length=8)
    ids = np.array([short[0]["labels"]])
    id2label = dict(enumerate(UD_V1_UPOS))
    words = word_predictions(ids, ids, kept_short, [{"tokens": REAL_WORDS}], id2label, missing=None)[0]
    assert 0 < len(kept_short[0]) < len(REAL_WORDS)
    assert words[:len(kept_short[0])] == REAL_TAGS[:len(kept_short[0])] and words[-1] is None


def test_last_subtoken_labelling_for_causal_models(tokenizer, saved_models):
    """GPT's tags sit on each word's last sub-token (the first state that has seen the whole word); the other
    architectures keep the first; perfect predictions still map back to the gold tags."""
    from transformers import AutoConfig

    label2id = {tag: i for i, tag in enumerate(UD_V1_UPOS)}
    dataset, kept = encode_tagged(tokenizer, [{"tokens": REAL_WORDS, "tags": REAL_TAGS}], label2id, max_length=256,
                                  subtoken="last")
    labels = dataset[0]["labels"]
    word_ids = tokenizer(REAL_WORDS, is_split_into_words=True).word_ids()
    for word, following, label in zip(word_ids, [*word_ids[1:], None], labels):
        assert label == (IGNORE_INDEX if word is None or word == following else label2id[REAL_TAGS[word]])
    first, _ = encode_tagged(tokenizer, [{"tokens": REAL_WORDS, "tags": REAL_TAGS}], label2id, max_length=256)
    assert labels != first[0]["labels"]  # a word of several sub-tokens moved its label
    ids = np.array([labels])
    assert word_predictions(ids, ids, kept, [{"tokens": REAL_WORDS}], dict(enumerate(UD_V1_UPOS)), None)[0] == REAL_TAGS
    assert {m: word_subtoken(AutoConfig.from_pretrained(saved_models[m])) for m in saved_models} == {
        "gpt": "last", "bert": "first", "hybrid": "first"}
    with pytest.raises(ValueError, match="subtoken must be 'first' or 'last'"):
        encode_tagged(tokenizer, [{"tokens": REAL_WORDS, "tags": REAL_TAGS}], label2id, 256, subtoken="middle")


def test_entity_f1_exact_numbers():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "I-ORG"]]
    # gold spans 3, predicted 3, correct 1 (PER 0-1): P = R = F1 = 1/3.
    scores = entity_f1(gold, pred)
    assert scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(1 / 3) and scores["n_gold_entities"] == 3
    # seqeval's example: y_true MISC 0-2, PER 6-7; y_pred MISC 1-2, PER 6-7 → P = R = F1 = 0.5.
    true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    predicted = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    assert entity_f1(true, predicted)["f1"] == pytest.approx(0.5)
    scores = entity_f1([["B-PER", "O"]], [["O", "B-PER"]])
    assert scores == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n_gold_entities": 1}
    # Non-strict IOB2 (conlleval): an I- after O opens an entity, a type change closes one.
    assert entity_f1([["I-PER", "I-PER", "B-PER", "I-LOC"]], [["B-PER", "I-PER", "B-PER", "B-LOC"]]) == {
        "precision": 1.0, "recall": 1.0, "f1": 1.0, "n_gold_entities": 3}


def test_entity_f1_on_il_ner_dev(shared_data):
    """The IL-NER dev labels against themselves, and with every person (NEP) entity dropped."""
    gold = [s["tags"] for s in load_ner_jsonl(shared_data / "il_ner_hindi" / "dev.jsonl")]
    assert entity_f1(gold, gold) == {"precision": 1.0, "recall": 1.0, "f1": 1.0,
                                     "n_gold_entities": sum(t.startswith("B-") for tags in gold for t in tags)}
    without_people = [["O" if t.endswith("-NEP") else t for t in tags] for tags in gold]
    n_people = sum(t == "B-NEP" for tags in gold for t in tags)
    scores = entity_f1(gold, without_people)
    assert n_people > 100 and scores["precision"] == 1.0
    assert scores["recall"] == pytest.approx(1 - n_people / scores["n_gold_entities"])


def test_accuracy_and_macro_f1_exact_numbers():
    scores = accuracy_and_macro_f1([0, 0, 1, 1, 2], [0, 1, 1, 1, 0])
    # F1: label 0 → 2·1/(2+1+1) = 0.5; label 1 → 2·2/(4+1+0) = 0.8; label 2 → 0.
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert accuracy_and_macro_f1([1, 1], [1, 1]) == {"accuracy": 1.0, "macro_f1": 1.0}


# --------------------------------------------------------------------------- real runs


@pytest.mark.parametrize("model_type", ["gpt", "bert", "hybrid"])
def test_pos_finetuning_learns(saved_models, shared_data, model_type):
    """A tiny repeated training set: word accuracy on it must rise well above the untrained head's."""
    train, _, _, labels = load_task("pos", shared_data)
    small = train[:12]
    result = finetune(saved_models[model_type], "pos", small * 4, small, labels, seed=0, epochs=6, batch_size=8,
                      learning_rate=3e-3, evaluate_before=True)
    json.dumps(result)
    assert {"accuracy", "n_words", "n_words_truncated"} <= set(result["metrics"])
    assert result["n_train"] == 48 and result["n_eval"] == 12 and result["labels"] == list(UD_V1_UPOS)
    assert result["metrics"]["accuracy"] > result["before"]["accuracy"] + 0.2, result


@pytest.mark.parametrize("model_type,task,keys", [
    ("gpt", "bbc_topic", {"accuracy", "macro_f1"}),
    ("bert", "ner", {"f1", "precision", "recall"}),
    ("hybrid", "iitp_sentiment", {"accuracy", "macro_f1"}),
])
def test_finetune_runs_on_shared_tasks(saved_models, shared_data, model_type, task, keys):
    train, _, evaluation, labels = load_task(task, shared_data)
    result = finetune(saved_models[model_type], task, train, evaluation, labels, epochs=1, batch_size=16,
                      max_train_examples=32, max_eval_examples=16)
    assert keys <= set(result["metrics"]) and result["n_train"] == 32 and result["n_eval"] == 16
    assert all(0.0 <= result["metrics"][k] <= 1.0 for k in keys)


def test_cli_suite_writes_summary(saved_models, shared_data, tmp_path, capsys):
    output = tmp_path / "results.json"
    code = main(["--model", str(saved_models["bert"]), "--tasks", "bbc_topic", "--seeds", "0", "1", "--quick",
                 "--max-train-examples", "16", "--max-eval-examples", "8", "--shared-data", str(shared_data),
                 "--output", str(output)])
    assert code == 0
    entry = json.loads(output.read_text(encoding="utf-8"))["tasks"]["bbc_topic"]
    assert entry["n_train"] == 16 and entry["n_eval"] == 8 and len(entry["per_seed"]) == 2
    assert set(entry["accuracy"]) == {"mean", "std"} and set(entry["macro_f1"]) == {"mean", "std"}
    assert "from_scratch" not in entry and entry["n_dev"] == 0 and entry["learning_rate"] == 5e-5  # --quick
    captured = capsys.readouterr()
    assert "[finetune] bbc_topic:" in captured.err and json.loads(captured.out)["tasks"]["bbc_topic"] == entry


def test_cli_reports_missing_model_as_one_line(tmp_path, capsys):
    assert main(["--model", str(tmp_path / "nope"), "--tasks", "pos"]) == 2
    assert capsys.readouterr().err.strip().startswith("hindi-lm: error:")


@pytest.mark.parametrize("model_type", ["gpt", "bert", "hybrid"])
def test_new_task_head_loads_without_a_missing_weights_table(saved_models, model_type, capfd, caplog):
    """Heads that are new by design load quietly; a checkpoint missing weights of the body still warns."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForTokenClassification

    from training.task_encoding import load_with_new_head

    model = load_with_new_head(AutoModelForTokenClassification, saved_models[model_type], num_labels=3)
    assert model.num_labels == 3
    err = capfd.readouterr().err
    assert "MISSING" not in err and "UNEXPECTED" not in err and "newly initialised" not in err, err
    folder = saved_models[model_type]
    weights = load_file(str(folder / "model.safetensors"))
    dropped = next(k for k in weights if k in model.state_dict() and not any(e in k for e in ("emb", "wte", "wpe")))
    broken = folder.parent / f"{model_type}-broken"
    import shutil

    shutil.copytree(folder, broken, dirs_exist_ok=True)
    save_file({k: v for k, v in weights.items() if k != dropped}, str(broken / "model.safetensors"),
              metadata={"format": "pt"})
    load_with_new_head(AutoModelForTokenClassification, broken, num_labels=3)
    assert "MISSING" not in capfd.readouterr().err
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"1 weights of the pretrained body were not in the checkpoint" in warnings[0]
    assert dropped in warnings[0]
