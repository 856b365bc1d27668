"""The fine-tuning protocol: fixed dev split, early stopping, learning-rate choice, majority and from-scratch floors,
the out-of-domain POS test, and its report table, on tiny models and tiny data."""

import json

import pytest
import torch
from safetensors.torch import load_file

from training.finetune import finetune, main
from training.task_encoding import accuracy_and_macro_f1, entity_f1, majority_baseline, tag_accuracy
from training.report import finetune_protocol_table, ranking_tasks
from training.tasks import load_conllu_upos, load_out_of_domain_tests, load_task, split_off_dev


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _texts(split):
    return {" ".join(e["tokens"]) for e in split}


def test_pos_dev_is_fixed_by_hash_and_never_overlaps_train_or_test(shared_data):
    train, dev, test, _ = load_task("pos", shared_data)
    everything = load_conllu_upos(shared_data / "ud_hindi_hdtb_2015" / "hi-ud-dev.conllu")
    assert len(train) + len(dev) == len(everything) == 1659
    assert 0.07 < len(dev) / len(everything) < 0.13
    assert not _texts(dev) & _texts(train) and not _texts(dev) & _texts(test)
    # the split depends on the texts only, not on their order
    again_train, again_dev = split_off_dev(list(reversed(everything)))
    assert _texts(again_dev) == _texts(dev) and _texts(again_train) == _texts(train)
    for task in ("ner", "bbc_topic", "iitp_sentiment"):  # their own dev files, cleaned of test sentences
        task_train, task_dev, task_test, _ = load_task(task, shared_data)
        key = (lambda e: " ".join(e["tokens"])) if task == "ner" else (lambda e: e["text"])
        train_texts, dev_texts, test_texts = ({key(e) for e in split} for split in (task_train, task_dev, task_test))
        assert len(task_dev) > 100 and not dev_texts & test_texts and not train_texts & (dev_texts | test_texts)
    ner_train, ner_dev, ner_test, _ = load_task("ner", shared_data)
    # IL-NER: 364 train rows (copies included) repeat a test or dev sentence, 59 dev rows a test one
    assert (len(ner_train), len(ner_dev), len(ner_test)) == (11076 - 364, 1389 - 59, 1388)


def test_pud_reads_ud_v2_conjunctions_as_v1_and_refuses_other_v2_tags(shared_data, tmp_path):
    pud = load_out_of_domain_tests("pos", shared_data)["pud"]
    tags = {t for e in pud for t in e["tags"]}
    assert len(pud) == 500 and "CONJ" in tags and "CCONJ" not in tags
    assert load_out_of_domain_tests("ner", shared_data) == {}
    bad = tmp_path / "v2.conllu"
    bad.write_text("1\tऔर\tऔर\tCCONJ\tCC\t_\t0\troot\t_\t_\n2\tx\tx\tPROPNX\t_\t_\t1\tdep\t_\t_\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"v2\.conllu:2: UPOS 'PROPNX' is not a UD v1 tag"):
        load_conllu_upos(bad, {"CCONJ": "CONJ"})


def test_majority_floors_exact_numbers():
    train = [{"tokens": ["a", "b", "a"], "tags": ["X", "Y", "X"]}, {"tokens": ["a", "c"], "tags": ["Z", "Y"]}]
    test = [{"tokens": ["a", "b", "d"], "tags": ["X", "Z", "Y"]}]
    # a → X (2 of 3), b → Y, unseen d → the most frequent tag overall (X: 2, Y: 2, Z: 1; ties by first seen: X)
    assert majority_baseline("pos", train, test) == tag_accuracy([["X", "Z", "Y"]], [["X", "Y", "X"]])
    assert majority_baseline("pos", train, test)["accuracy"] == pytest.approx(1 / 3)
    classes = [{"text": str(i), "label": label} for i, label in enumerate("aab")]
    assert majority_baseline("classification", classes, classes) == accuracy_and_macro_f1(list("aab"), list("aaa"))
    ner = [{"tokens": ["राम", "गया"], "tags": ["B-NEP", "O"]}]
    assert majority_baseline("ner", ner, ner) == entity_f1([["B-NEP", "O"]], [["O", "O"]])
    assert majority_baseline("ner", ner, ner)["f1"] == 0.0


def test_early_stopping_stops_and_keeps_the_best_epoch(saved_models, shared_data):
    train, dev, test, labels = load_task("bbc_topic", shared_data)
    # a learning rate too small to change any prediction: the dev score never improves after the first epoch
    result = finetune(saved_models["bert"], "bbc_topic", train[:16], test[:8], labels, dev=dev[:8], epochs=20,
                      batch_size=8, learning_rate=1e-12, patience=2)
    assert result["epochs_trained"] == 3 and result["best_epoch"] == 1
    assert result["n_dev"] == 8 and result["hyperparameters"]["patience"] == 2
    assert set(result["dev"]) >= {"accuracy", "macro_f1"}


def test_classification_stops_and_keeps_the_epoch_on_macro_f1_not_accuracy(saved_models, shared_data, monkeypatch):
    import training.finetune

    # Scripted dev scores per epoch: accuracy peaks at epoch 1, macro-F1 at epoch 2. With patience 2, choosing by
    # macro-F1 trains 4 epochs and keeps the second; choosing by accuracy would stop after 3 and keep the first.
    scripted = iter([(0.9, 0.1), (0.1, 0.9), (0.9, 0.2), (0.9, 0.3)])

    def scripted_metrics(kind, examples, kept_words, id2label):
        def compute_metrics(prediction):
            accuracy, macro_f1 = next(scripted, (0.5, 0.5))
            return {"accuracy": accuracy, "macro_f1": macro_f1}
        return compute_metrics

    monkeypatch.setattr(training.finetune, "make_compute_metrics", scripted_metrics)
    train, dev, test, labels = load_task("bbc_topic", shared_data)
    result = finetune(saved_models["bert"], "bbc_topic", train[:8], test[:4], labels, dev=dev[:4], epochs=10,
                      batch_size=8, learning_rate=1e-4, patience=2)
    assert result["epochs_trained"] == 4 and result["best_epoch"] == 2


def test_length_grouped_training_pads_less_and_evaluation_keeps_its_order(saved_models, tokenizer,
                                                                          tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification, TrainingArguments

    from training.finetune import InOrderEvaluationTrainer
    from training.task_encoding import load_with_new_head

    torch.manual_seed(0)
    lengths = torch.randint(2, 60, (256,)).tolist()
    dataset = Dataset.from_dict({"input_ids": [[5] * n for n in lengths], "labels": [[0] * n for n in lengths]})
    model = load_with_new_head(AutoModelForTokenClassification, saved_models["bert"], num_labels=2)
    padded = {}
    for strategy in ("random", "group_by_length"):
        args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=16,
                                 per_device_eval_batch_size=16, train_sampling_strategy=strategy, report_to=[],
                                 use_cpu=True, seed=0)
        trainer = InOrderEvaluationTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                           data_collator=DataCollatorForTokenClassification(tokenizer))
        batches = list(trainer.get_train_dataloader())
        assert sum(int((b["labels"] != -100).sum()) for b in batches) == sum(lengths)  # every example, once
        padded[strategy] = sum(b["input_ids"].numel() for b in batches) / sum(lengths)
        in_order = [int((b["labels"] != -100).sum(dim=1)[i]) for b in trainer.get_eval_dataloader(dataset)
                    for i in range(len(b["labels"]))]
        assert in_order == lengths
    # 256 examples of 2-59 tokens in batches of 16: sorting happens within windows of 4 batches here (of 50 on
    # the real training splits), so grouping pads about 1.2x, random batches about 1.85x
    assert padded["group_by_length"] < 1.3 < 1.6 < padded["random"], padded


def test_from_scratch_twin_has_the_architecture_but_not_the_weights(saved_models, shared_data, tmp_path):
    import shutil

    from transformers import AutoModelForCausalLM

    # The fixture's folder holds its seed-0 initialisation; shift its weights so "pretrained" differs from any init.
    folder = tmp_path / "pretrained"
    shutil.copytree(saved_models["gpt"], folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05)
    model.save_pretrained(folder)
    train, _, test, labels = load_task("pos", shared_data)
    pretrained = load_file(str(folder / "model.safetensors"))
    trained = {}
    for scratch in (False, True):
        out = tmp_path / str(scratch)
        result = finetune(folder, "pos", train[:8], test[:4], labels, epochs=1, batch_size=8,
                          learning_rate=1e-12, from_scratch=scratch, output_dir=out, seed=0)
        assert result["from_scratch"] is scratch
        trained[scratch] = load_file(str(out / "model.safetensors"))
        config = json.loads((out / "config.json").read_text())
        assert config["architectures"] == ["GPT2ForTokenClassification"]
    assert trained[False].keys() == trained[True].keys()
    body = [k for k in trained[False] if k.startswith("transformer.h.") and k.endswith("attn.c_attn.weight")]
    assert body
    for key in body:
        assert trained[True][key].shape == trained[False][key].shape
        assert torch.allclose(trained[False][key], pretrained[key], atol=1e-6)  # pretrained body, untouched
        assert (trained[True][key] - pretrained[key]).abs().max() > 1e-2        # a different initialisation


def test_suite_chooses_the_learning_rate_on_dev_and_reports_floors_and_gain(saved_models, shared_data, tmp_path):
    output = tmp_path / "suite.json"
    code = main(["--model", str(saved_models["bert"]), "--tasks", "pos", "--seeds", "0", "1", "--epochs", "2",
                 "--learning-rates", "1e-4", "3e-3", "--batch-size", "8", "--max-train-examples", "24",
                 "--max-eval-examples", "8", "--precision", "fp32", "--shared-data", str(shared_data),
                 "--length-grouping", "--output", str(output)])
    assert code == 0
    summary = json.loads(output.read_text())
    entry = summary["tasks"]["pos"]
    assert summary["protocol"] == "full" and summary["settings"]["patience"] == 3
    assert summary["settings"]["length_grouping"] is True
    assert set(entry["learning_rate_choice"]) == {"0.0001", "0.003"}
    assert entry["learning_rate"] == max((1e-4, 3e-3), key=lambda lr: entry["learning_rate_choice"][f"{lr:g}"])
    assert [run["seed"] for run in entry["per_seed"]] == [0, 1]
    assert entry["n_train"] == 24 and entry["n_dev"] == 8 and entry["n_eval"] == 8
    for side in (entry, entry["from_scratch"]):
        assert side["accuracy"]["mean"] == pytest.approx(sum(r["accuracy"] for r in side["per_seed"]) / 2)
        assert set(side["out_of_domain"]["pud"]["accuracy"]) == {"mean", "std"}
    assert entry["pretraining_gain"]["accuracy"] == pytest.approx(
        entry["accuracy"]["mean"] - entry["from_scratch"]["accuracy"]["mean"])
    train, _, test, _ = load_task("pos", shared_data)
    assert entry["majority"] == majority_baseline("pos", train[:24], test[:8])
    assert entry["seconds"] > 0 and summary["seconds"] >= entry["seconds"]
    table = finetune_protocol_table({"models": {"bert": {"finetune": summary["tasks"]}}})
    gain = 100 * entry["pretraining_gain"]["accuracy"]
    assert f"(gain {gain:+.1f}), lr {entry['learning_rate']:g}" in table
    assert f"| majority floor | {100 * entry['majority']['accuracy']:.1f} |" in table


def test_a_task_ranks_pretraining_only_when_the_gain_exceeds_the_larger_std():
    def side(mean, std):
        return {"mean": mean, "std": std}

    tasks = {
        "pos": {"accuracy": side(0.92, 0.001), "from_scratch": {"accuracy": side(0.87, 0.002)}},  # +5.0 vs 0.2
        "ner": {"f1": side(0.64, 0.008), "from_scratch": {"f1": side(0.63, 0.013)}},  # +1.0 vs 1.3: within noise
        "bbc_topic": {"macro_f1": side(0.50, 0.0)},  # no twin: not compared
        "iitp_sentiment": {"macro_f1": side(0.55, 0.02), "from_scratch": {"macro_f1": side(0.40, 0.11)}},
    }
    assert ranking_tasks(tasks) == ["pos", "iitp_sentiment"]
    table = finetune_protocol_table({"models": {"gpt": {"finetune": tasks}}})
    assert "| 2 of 3: POS acc, IITP macro-F1 |" in table
    tasks["iitp_sentiment"]["from_scratch"]["macro_f1"]["std"] = 0.16  # now the twin's spread covers the gain
    assert ranking_tasks(tasks) == ["pos"]


@pytest.mark.parametrize("argv,message", [
    (["--quick", "--learning-rates", "1e-4", "1e-3"], "choosing among several learning rates needs a dev split"),
    (["--patience", "0"], "--patience must be positive, got 0"),
    (["--learning-rates", "0"], "--learning-rates must be positive, got 0.0"),
    (["--epochs", "0"], "--epochs must be positive, got 0.0"),
])
def test_bad_protocol_settings_are_refused(saved_models, shared_data, capsys, argv, message):
    code = main(["--model", str(saved_models["bert"]), "--tasks", "bbc_topic", "--seeds", "0",
                 "--max-train-examples", "8", "--shared-data", str(shared_data), *argv])
    assert code == 2 and message in capsys.readouterr().err


def test_compare_runs_the_protocol_when_asked(monkeypatch, tmp_path, shared_data):
    import training.compare
    from test_pretrain import FAST, fast_preset

    calls = []
    monkeypatch.setattr(training.compare, "finetune_suite",
                        lambda model_dir, shared, **kw: calls.append(kw) or {"tasks": {}})
    results = training.compare.compare(run_dir=tmp_path / "run", preset=fast_preset(), word_budget=4000,
                                       model_types=["gpt"], max_eval_texts=4, max_pairs=12, finetune_seeds=(0, 1),
                                       finetune_protocol="full", **{k: v for k, v in FAST.items() if k != "seed"})
    assert calls == [dict(tasks=("pos", "ner", "bbc_topic", "iitp_sentiment"), seeds=(0, 1), quick=False,
                          max_train_examples=None, max_eval_examples=None)]
    assert results["run"]["finetune"] == {"protocol": "full", "seeds": [0, 1]}
    with pytest.raises(ValueError, match="--finetune-protocol must be one of quick, full, probe, got 'long'"):
        training.compare.compare(run_dir=tmp_path / "other", finetune_protocol="long")
