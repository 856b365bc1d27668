"""lm-evaluation-harness and minicons agree with `hindi-lm evaluate` on a tiny saved model (issue 13).

The harness runs the task files of `hindi-lm lm-eval-tasks` on the first pairs of each phenomenon of the shared
BHS minimal pairs (plus one tie) and the first held-out lines; `hindi-lm evaluate` scores the same files.
"""

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hindi_models.minimal_pairs import load_minimal_pairs
from hindi_models.scoring import causal_sentence_scores, masked_sentence_scores
from training import evaluate as evaluate_cli
from training import lm_eval_tasks

PAIRS = "bhs_hindi_minimal_pairs/pairs.public.jsonl"
TEXT = "hindi_aesthetics_corpus/validation.txt"
PAIRS_PER_PHENOMENON = 20
TIE = "बच्चा तकिये बनाता है।"


@pytest.fixture(scope="module")
def eval_files(shared_data, saved_models, tmp_path_factory):
    """A pairs subset (first pairs per phenomenon, then one pair with good == bad) and held-out lines that fit the
    model's context in one window (longer texts are windowed differently by the harness, see heldout_text.yaml)."""
    root = tmp_path_factory.mktemp("lm_eval_data")
    pairs, per_phenomenon = [], {}
    for pair in load_minimal_pairs(shared_data / PAIRS):
        if per_phenomenon.setdefault(pair["phenomenon"], 0) < PAIRS_PER_PHENOMENON:
            per_phenomenon[pair["phenomenon"]] += 1
            pairs.append(pair)
    pairs.append({"good": TIE, "bad": TIE, "phenomenon": "tie"})
    pairs_file = root / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")

    tokenizer = AutoTokenizer.from_pretrained(saved_models["gpt"])
    lines = (shared_data / TEXT).read_text(encoding="utf-8").splitlines()[:25]
    fits = [line for line in lines
            if len(tokenizer(line, add_special_tokens=False)["input_ids"]) + 2 <= tokenizer.model_max_length]
    assert len(fits) >= 10
    text_file = root / "text.txt"
    text_file.write_text("\n".join(fits) + "\n", encoding="utf-8")
    return pairs_file, text_file


@pytest.fixture(scope="module")
def ours(saved_models, eval_files, tmp_path_factory):
    """`hindi-lm evaluate` on the GPT folder and the same files (all pairs, all lines)."""
    pairs_file, text_file = eval_files
    out = tmp_path_factory.mktemp("ours") / "results.json"
    assert evaluate_cli.main(["--model", str(saved_models["gpt"]), "--minimal-pairs", str(pairs_file),
                              "--eval-text", str(text_file), "--max-texts", "0", "--device", "cpu",
                              "--quiet", "--output", str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8"))["sections"]["causal"]


@pytest.fixture(scope="module")
def harness(saved_models, eval_files, tmp_path_factory):
    """The harness on the same folder through `lm_eval.simple_evaluate`, with the written task files."""
    lm_eval = pytest.importorskip("lm_eval", reason="lm-evaluation-harness not installed (pip install -e '.[dev]')")
    from lm_eval.tasks import TaskManager

    tasks_dir = tmp_path_factory.mktemp("tasks")
    names = lm_eval_tasks.write_tasks(tasks_dir, *eval_files)
    # include_defaults=False: indexing the harness's ~14k built-in task files takes longer than this whole test.
    manager = TaskManager(include_path=str(tasks_dir), include_defaults=False)
    # add_bos_token=False for the text task (see heldout_text.yaml); the minimal pairs do not read it.
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={saved_models['gpt']},add_bos_token=False",
                                      tasks=[lm_eval_tasks.GROUP, lm_eval_tasks.TEXT_TASK], task_manager=manager,
                                      device="cpu", batch_size=64, bootstrap_iters=0, log_samples=True)
    return names, results


def test_cli_writes_a_task_per_phenomenon(shared_data, tmp_path, capsys):
    from training.cli import main

    folder = tmp_path / "tasks"
    assert main(["lm-eval-tasks", "--output-dir", str(folder), "--shared-data", str(shared_data)]) == 0
    phenomena = list(dict.fromkeys(p["phenomenon"] for p in load_minimal_pairs(shared_data / PAIRS)))
    assert len(phenomena) == 6
    tasks = [lm_eval_tasks.GROUP, *map(lm_eval_tasks.phenomenon_task, phenomena), lm_eval_tasks.TEXT_TASK]
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{t}.yaml" for t in tasks] + ["utils.py"])
    assert lm_eval_tasks.phenomenon_task("bhs_hindi/S_ne_O_V") == "hindi_minimal_pairs_bhs_hindi_S_ne_O_V"
    assert f'test: "{(shared_data / PAIRS).resolve()}"' in (folder / f"{tasks[1]}.yaml").read_text(encoding="utf-8")
    assert f"--tasks hindi_minimal_pairs --include_path {folder}" in capsys.readouterr().out
    # A rerun replaces its own folder; a folder of anything else is refused.
    assert lm_eval_tasks.write_tasks(folder, shared_data / PAIRS) == tasks[:-1]
    assert not (folder / "hindi_heldout_text.yaml").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="does not hold task files"):
        lm_eval_tasks.write_tasks(tmp_path / "other", shared_data / PAIRS)


def test_task_files_refuse_what_the_harness_cannot_read(tmp_path):
    broken = tmp_path / "pairs.jsonl"
    broken.write_text('{"good": "a", "bad": "b"}\n{"good": "c"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"pairs.jsonl:2: missing key 'bad'"):
        lm_eval_tasks.write_tasks(tmp_path / "tasks", broken)
    table = tmp_path / "pairs.tsv"
    table.write_text("sen\twrong_sen\na\tb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="read JSON lines; got a .tsv file"):
        lm_eval_tasks.write_tasks(tmp_path / "tasks", table)
    assert not (tmp_path / "tasks").exists()


def test_harness_accuracy_equals_hindi_lm_evaluate(harness, ours):
    names, results = harness
    mp = ours["minimal_pairs"]
    assert mp["total"] == 6 * PAIRS_PER_PHENOMENON + 1 and mp["ties"] == 1
    for name, counts in mp["per_phenomenon"].items():
        row = results["results"][lm_eval_tasks.phenomenon_task(name)]
        assert row["sample_len"] == counts["total"]
        assert row["acc,none"] == counts["accuracy"], name
    # The tie: bad is the harness's first choice, so argmax counts it wrong, as `hindi-lm evaluate` does.
    assert mp["per_phenomenon"]["tie"]["accuracy"] == 0.0
    overall = results["results"][lm_eval_tasks.GROUP]
    assert overall["acc,none"] == pytest.approx(mp["accuracy"], abs=1e-12)
    assert 0.2 < mp["accuracy"] < 0.8  # a random model: not all-right or all-wrong by construction


def test_harness_logprob_of_each_sentence_equals_ours(harness, saved_models):
    names, results = harness
    model = AutoModelForCausalLM.from_pretrained(saved_models["gpt"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(saved_models["gpt"])
    theirs = {}
    for task in names[1:-1]:
        for sample in results["samples"][task]:
            (bad, _), (good, _) = sample["filtered_resps"]
            theirs[sample["doc"]["bad"]], theirs[sample["doc"]["good"]] = bad, good
    scores = causal_sentence_scores(model, tokenizer, list(theirs), progress=False)
    mine = {sentence: score.logprob for sentence, score in zip(theirs, scores)}
    diff = max(abs(theirs[s] - mine[s]) for s in theirs)
    assert diff < 2e-4, diff  # float32 sums of ~25 log-probs, batched differently
    assert min(abs(v) for v in mine.values()) > 10  # real sentence scores, not empty ones


def test_harness_bits_per_char_equals_hindi_lm_evaluate(harness, ours):
    _, results = harness
    theirs = results["results"][lm_eval_tasks.TEXT_TASK]
    lm = ours["language_model"]
    assert theirs["sample_len"] == lm["texts"]
    assert theirs["bits_per_char,none"] == pytest.approx(lm["bits_per_char"], rel=1e-6)
    assert theirs["bits_per_word,none"] == pytest.approx(lm["bits_per_word"], rel=1e-6)
    assert lm["nll_nats"] > 1000  # real texts were scored


# ------------------------------------------------------------------------------------------------------ minicons


@pytest.fixture(scope="module")
def sentences(shared_data):
    pairs = load_minimal_pairs(shared_data / PAIRS, limit=6)
    return [s for p in pairs for s in (p["good"], p["bad"])]


def test_minicons_incremental_scorer_equals_ours(saved_models, sentences):
    scorer = pytest.importorskip("minicons.scorer", reason="minicons not installed (pip install -e '.[dev]')")
    lm = scorer.IncrementalLMScorer(str(saved_models["gpt"]), device="cpu")
    # The folder's tokenizer already starts a text with [CLS] (bos_token=True would double it); eos_token=True
    # appends "[SEP]", the closing token our causal scores include.
    theirs = lm.sequence_score(sentences, reduction=lambda x: x.sum(0).item(), eos_token=True)
    mine = [s.logprob for s in causal_sentence_scores(lm.model, lm.tokenizer, sentences, progress=False)]
    assert theirs == pytest.approx(mine, abs=1e-4)


def test_minicons_masked_scorer_equals_ours(saved_models, sentences):
    scorer = pytest.importorskip("minicons.scorer", reason="minicons not installed (pip install -e '.[dev]')")
    mlm = scorer.MaskedLMScorer(str(saved_models["bert"]), device="cpu")
    # minicons 0.3.39 encodes strings with `batch_encode_plus`, which transformers 5 removed; its scorers also take
    # an encoding, which is what `batch_encode_plus` returned.
    encoded = mlm.tokenizer(sentences, padding="longest", return_attention_mask=True)
    theirs = mlm.sequence_score(encoded, reduction=lambda x: x.sum(0).item())
    mine = [s.logprob for s in masked_sentence_scores(mlm.model, mlm.tokenizer, sentences, progress=False)]
    assert theirs == pytest.approx(mine, abs=1e-4)
    assert all(math.isfinite(v) and v < -10 for v in theirs)
