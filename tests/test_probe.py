"""Linear probes on frozen states: the states are the task head's input, per word and padding-free; gold ids map back
to perfect scores; the suite reports its floors; the command line refuses mixing protocols."""

import pytest
import torch
from transformers import AutoModelForTokenClassification

from training.finetune import main
from training.probe import PROBE_C, features, head_inputs, probe_suite, score
from training.task_encoding import encode_task, load_task_model
from training.tasks import load_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(saved_models, tokenizer, tmp_path_factory) -> dict:
    """The shared tiny folders plus a tiny GPT-BERT one."""
    from hindi_models.factory import ModelFactory
    from hindi_models.presets import load_preset

    torch.manual_seed(0)
    factory = ModelFactory(load_preset("tiny", model_type="gpt_bert"), output_root=tmp_path_factory.mktemp("gb"),
                           experiment_name="exp")
    model = factory.create_model(tokenizer=tokenizer, verbose=False)
    return {**saved_models, "gpt_bert": factory.save_model(model, tokenizer, checkpoint_name="gpt_bert")}


@pytest.mark.parametrize("model_type", ["gpt", "bert", "hybrid", "gpt_bert"])
def test_head_inputs_are_the_unpadded_states_the_tagger_reads(models, shared_data, model_type):
    """Each example's states from a padded batch equal those of the example run alone, and the tagger's logits are
    its `classifier` applied to them, so the probe sees what fine-tuning's head sees."""
    train, _, _, labels = load_task("pos", shared_data)
    examples = train[:6]
    tokenizer, model, max_length = load_task_model(models[model_type], AutoModelForTokenClassification,
                                                   labels, 256, seed=0)
    data, _ = encode_task("pos", tokenizer, {"train": examples}, labels, max_length)["train"]
    batched = head_inputs(model, tokenizer, data, batch_size=6)
    assert len(batched) == 6 and len({len(s) for s in batched}) > 1  # lengths differ: padding happened
    for i, states in enumerate(batched):
        alone = head_inputs(model, tokenizer, data.select([i]), batch_size=1)[0]
        assert states.shape == (len(data[i]["input_ids"]), model.config.hidden_size)
        torch.testing.assert_close(states, alone, atol=1e-5, rtol=1e-4)
    ids = torch.tensor([data[0]["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    torch.testing.assert_close(logits, model.classifier(batched[0]), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("task", ["pos", "ner", "bbc_topic"])
def test_gold_ids_map_back_to_perfect_scores(saved_models, shared_data, task):
    """`features` gives one row per labelled word (or text) and `score` maps ids back to words: the gold ids score
    1.0, a constant prediction scores its share."""
    train, _, _, labels = load_task(task, shared_data)
    examples = train[:20]
    tokenizer, model, max_length = load_task_model(saved_models["gpt"], AutoModelForTokenClassification, labels,
                                                   256, seed=0)
    data, kept = encode_task(task, tokenizer, {"train": examples}, labels, max_length)["train"]
    task_kind = "classification" if task == "bbc_topic" else task
    x, y = features(task_kind, head_inputs(model, tokenizer, data), data)
    n_items = len(examples) if task_kind == "classification" else sum(len(k) for k in kept)
    assert x.shape == (n_items, model.config.hidden_size) and y.shape == (n_items,)
    perfect = score(task_kind, y, data, kept, examples, labels)
    main_metric = {"pos": "accuracy", "ner": "f1", "classification": "accuracy"}[task_kind]
    assert perfect[main_metric] == pytest.approx(1.0 if task_kind != "pos" else
                                                 sum(len(k) for k in kept) / sum(len(e["tokens"]) for e in examples))
    if task_kind == "classification":
        constant = score(task_kind, y * 0 + y[0], data, kept, examples, labels)["accuracy"]
        assert constant == pytest.approx(float((y == y[0]).mean()))


def test_probe_suite_reports_floors_choice_and_gain(saved_models, shared_data):
    summary = probe_suite(saved_models["bert"], shared_data, tasks=("pos",), max_train_examples=60,
                          max_eval_examples=30)
    pos = summary["tasks"]["pos"]
    assert (pos["n_train"], pos["n_dev"], pos["n_eval"]) == (60, 30, 30)
    assert pos["C"] in PROBE_C and set(pos["C_choice"]) == {f"{c:g}" for c in PROBE_C}
    assert pos["C_choice"][f"{pos['C']:g}"] == max(pos["C_choice"].values())
    accuracy, scratch = pos["accuracy"]["mean"], pos["from_scratch"]["accuracy"]["mean"]
    assert 0 < accuracy <= 1 and 0 < scratch <= 1 and pos["accuracy"]["std"] == 0.0
    assert pos["pretraining_gain"]["accuracy"] == pytest.approx(accuracy - scratch)
    assert set(pos["out_of_domain"]) == {"pud"} and pos["majority"]["n_words"] == pos["n_words"]
    assert 0 < pos["from_scratch"]["out_of_domain"]["pud"]["accuracy"]["mean"] <= 1
    again = probe_suite(saved_models["bert"], shared_data, tasks=("pos",), max_train_examples=60,
                        max_eval_examples=30, from_scratch=False)
    assert again["tasks"]["pos"]["accuracy"] == pos["accuracy"]  # deterministic: no seed noise
    assert "from_scratch" not in again["tasks"]["pos"]


def test_large_train_splits_are_sampled_for_the_fit(saved_models, shared_data, monkeypatch):
    import training.probe

    monkeypatch.setattr(training.probe, "MAX_FIT_ITEMS", 100)
    train, dev, test, labels = load_task("pos", shared_data)
    result = training.probe.linear_probe(saved_models["gpt"], "pos", train[:40], dev[:10], test[:10], labels)
    assert result["n_fit_items"] == 100 < result["n_train_items"]
    assert result["n_train_items"] == sum(len(e["tokens"]) for e in train[:40])


def test_linear_probe_and_quick_are_refused_together(saved_models, capsys):
    assert main(["--model", str(saved_models["gpt"]), "--linear-probe", "--quick", "--tasks", "pos"]) == 2
    assert "--linear-probe and --quick" in capsys.readouterr().err


@pytest.mark.parametrize("extra, named", [(["--epochs", "3"], "--epochs"), (["--patience", "1"], "--patience"),
                                          (["--learning-rates", "1e-4"], "--learning-rates"),
                                          (["--batch-size", "8"], "--batch-size"),
                                          (["--seeds", "0", "1"], "--seeds (more than one)")])
def test_linear_probe_refuses_fine_tuning_only_flags(saved_models, capsys, extra, named):
    """Flags a probe cannot use are refused by name, before any model is loaded, instead of being ignored."""
    assert main(["--model", str(saved_models["gpt"]), "--linear-probe", "--tasks", "pos", *extra]) == 2
    err = capsys.readouterr().err
    assert named in err and "would be ignored" in err


def test_compare_probes_every_model_and_reports_the_floors(monkeypatch, tmp_path, shared_data):
    """`compare --finetune-protocol probe` runs the real probe suite (here on the splits' first examples) and the
    report's floors table shows pretrained / from scratch with the chosen C."""
    import training.compare
    from test_pretrain import FAST, fast_preset

    calls = []

    def small_probe_suite(model_dir, shared, **kwargs):
        calls.append(kwargs)
        return probe_suite(model_dir, shared, tasks=("pos", "bbc_topic"), max_train_examples=40, max_eval_examples=20)

    monkeypatch.setattr(training.compare, "probe_suite", small_probe_suite)
    results = training.compare.compare(run_dir=tmp_path / "run", preset=fast_preset(), word_budget=4000,
                                       model_types=["gpt"], max_eval_texts=4, max_pairs=12,
                                       finetune_protocol="probe", **{k: v for k, v in FAST.items() if k != "seed"})
    assert calls == [dict(tasks=("pos", "ner", "bbc_topic", "iitp_sentiment"), seed=0)]
    pos = results["models"]["gpt"]["finetune"]["pos"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "linear probe: logistic regression on the frozen model's states" in report
    row = next(line for line in report.splitlines() if line.startswith("| **gpt** |") and "C " in line)
    assert f"{100 * pos['accuracy']['mean']:.1f} ± 0.0 / {100 * pos['from_scratch']['accuracy']['mean']:.1f} ± 0.0" \
        in row and f"C {pos['C']:g}" in row
