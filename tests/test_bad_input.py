"""Bad input: a one-line error naming the culprit, exit code 2, and nothing already saved is touched."""

import json
import shutil

import pytest

from training.cli import main

PRESET = "model_type: gpt\nvocab_size: 2000\nhidden_size: 64\nnum_layers: 2\nnum_heads: 2\nmax_length: 64\n"


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def _odd_tokenizer(folder):
    """A tokenizer whose [PAD] is not id 0."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "भारत": 5}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]").save_pretrained(folder)
    return str(folder)


def _big_tokenizer(folder, sample_lines):
    from hindi_models.tokenizer import train_tokenizer

    train_tokenizer(sample_lines, vocab_size=1500, output_dir=folder, show_progress=False)
    return str(folder)


def _broken_copy(src, dst, how):
    shutil.copytree(src, dst)
    if how == "truncate":
        weights = dst / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        config = json.loads((dst / "config.json").read_text())
        (dst / "config.json").write_text(json.dumps({**config, "model_type": "t5x", "architectures": ["T5xModel"]}))
    return str(dst)


def _shared_with_unknown_label(root):
    """A shared-data folder whose BBC topic test split has a label the train split lacks."""
    folder = root / "shared" / "midas_hindi_classification" / "bbc_topic"
    folder.mkdir(parents=True)
    _write(folder / "train.jsonl", '{"text": "भारत जीता", "label": "sport"}\n{"text": "नई फ़िल्म", "label": "entertainment"}\n')
    _write(folder / "dev.jsonl", '{"text": "मैच", "label": "sport"}\n')
    _write(folder / "test.jsonl", '{"text": "बाज़ार गिरा", "label": "sport"}\n{"text": "शेयर", "label": "business"}\n')
    return str(root / "shared")


# (case id, builder(tmp, ctx) -> (command, extra args), text the one-line message must contain)
CASES = [
    ("missing-corpus", lambda t, c: ("pretrain", ["--corpus", str(t / "missing.txt")]), "missing.txt"),
    ("empty-corpus", lambda t, c: ("pretrain", ["--corpus", _write(t / "empty.txt", "")]), "empty.txt"),
    ("no-devanagari", lambda t, c: ("pretrain", ["--corpus", _write(t / "english.txt", "hello world\nmore text\n")]),
     "english.txt"),
    ("not-utf8", lambda t, c: ("pretrain", ["--corpus", _write(t / "latin1.txt", "caf\xe9 भारत\n".encode("latin-1",
                                                                                                       "replace"))]),
     "latin1.txt"),
    ("yaml-syntax", lambda t, c: ("pretrain", ["--preset", _write(t / "bad.yaml", PRESET + "dropout: [0.1\n")]),
     "bad.yaml: YAML syntax error"),
    ("yaml-unknown-key", lambda t, c: ("pretrain", ["--preset", _write(t / "bad.yaml", PRESET + "num_layer: 2\n")]),
     "bad.yaml: unknown key 'num_layer'"),
    ("yaml-wrong-type", lambda t, c: ("pretrain", ["--preset", _write(t / "bad.yaml", PRESET + "dropout: high\n")]),
     "bad.yaml: dropout: expected float, got str"),
    ("heads-not-dividing", lambda t, c: ("pretrain", ["--preset", _write(t / "bad.yaml", PRESET.replace(
        "num_heads: 2", "num_heads: 3"))]), "hidden_size: 64 is not divisible by num_heads 3"),
    ("special-ids-disagree", lambda t, c: ("pretrain", ["--tokenizer", _odd_tokenizer(t / "odd")]),
     "special token [PAD] has id 1, expected 0"),
    ("output-is-a-file", lambda t, c: ("pretrain-file", []), "is a file"),
    ("max-length-above-positions", lambda t, c: ("evaluate", ["--model", str(c["gpt"]), "--max-length", "4096"]),
     "max_length 4096 is above"),
    ("tokenizer-larger-than-embeddings", lambda t, c: ("evaluate", ["--model", str(c["gpt"]), "--tokenizer",
                                                                    _big_tokenizer(t / "big", c["lines"])]),
     "tokenizer has 1500 tokens but"),
    ("truncated-safetensors", lambda t, c: ("evaluate", ["--model", _broken_copy(c["gpt"], t / "trunc", "truncate")]),
     "corrupted or truncated safetensors"),
    ("unknown-model-type", lambda t, c: ("evaluate", ["--model", _broken_copy(c["gpt"], t / "t5x", "config")]),
     "'t5x'"),
    ("classification-label-not-in-label-set", lambda t, c: ("finetune", ["--model", str(c["gpt"]), "--tasks",
                                                                         "bbc_topic", "--seeds", "0", "--shared-data",
                                                                         _shared_with_unknown_label(t)]),
     "test.jsonl:2: label 'business'"),
    ("pairs-missing-bad", lambda t, c: ("evaluate", ["--model", str(c["gpt"]), "--minimal-pairs",
                                                     _write(t / "pairs.jsonl", '{"good": "भारत"}\n')]),
     "pairs.jsonl:1: missing key 'bad'"),
]


@pytest.mark.parametrize("builder, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_overwritten(builder, expected, tmp_path, capsys, saved_models,
                                                              sample_lines, tokenizer):
    tok_dir = tmp_path / "tok"
    tokenizer.save_pretrained(tok_dir)
    command, extra = builder(tmp_path, {"gpt": saved_models["gpt"], "lines": sample_lines})
    previous = tmp_path / "previous_run"  # a finished run that a failed command must leave alone
    previous.mkdir()
    sentinel = _write(previous / "model.safetensors", "weights of an earlier run")
    if command == "evaluate":
        argv = ["evaluate", "--eval-text", _write(tmp_path / "eval.txt", "भारत एक देश है।\n"), "--quiet",
                "--output", str(previous / "model.safetensors"), *extra]
        if "--minimal-pairs" not in extra:
            argv += ["--minimal-pairs", "none"]
    elif command == "finetune":
        argv = ["finetune", "--output", str(previous / "model.safetensors"), *extra]
    elif command == "pretrain-file":
        argv = ["pretrain", "--output-dir", sentinel, "--tokenizer", str(tok_dir), "--max-steps", "1"]
    else:
        argv = ["pretrain", "--output-dir", str(previous), "--overwrite", "--max-steps", "1", "--report-to", "none",
                *(["--tokenizer", str(tok_dir)] if "--tokenizer" not in extra else []), *extra]
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line.lower()]  # progress bars may share stderr
    assert code == 2
    assert "Traceback" not in err and len(errors) == 1 and errors[0].startswith("hindi-lm: error:"), err
    assert expected in errors[0]
    assert (previous / "model.safetensors").read_text() == "weights of an earlier run"


@pytest.mark.parametrize("argv, message", [
    (["pretrain", "--word-budget", "-5"], "--word-budget must be positive, got -5"),
    (["pretrain", "--batch-size", "0"], "--batch-size must be positive, got 0"),
    (["pretrain", "--learning-rate", "-1"], "--learning-rate must be positive, got -1.0"),
    (["pretrain", "--mlm-probability", "1.5"], "--mlm-probability must be between 0 and 1, got 1.5"),
    (["pretrain", "--model-type", "gpt_bert", "--causal-fraction", "-0.1"],
     "--causal-fraction must be between 0 and 1, got -0.1"),
    (["compare", "--word-budget", "0"], "--word-budget must be positive, got 0"),
    (["compare", "--word-budget", "1e6", "hybird=5e5"], "--word-budget hybird=5e5: 'hybird' is not an architecture"),
    (["compare", "--models", "gpt", "--word-budget", "1e6", "bert=5e5"],
     "--word-budget bert=500000: 'bert' is not among the compared models (gpt)"),
    (["compare", "--word-budget", "1e6", "2e6"],
     "--word-budget takes one budget for every model and model=words pairs, got 1e6 2e6"),
    (["compare", "--word-budget", "lots"], "--word-budget lots: 'lots' is not a number of words"),
    (["compare", "--word-budget", "gpt=0.5"], "--word-budget gpt=0.5: must be positive"),
    (["compare", "--word-budget", "gpt=1e6", "gpt=2e6"], "--word-budget gpt=2e6: gpt is given two budgets"),
])
def test_bad_run_settings_are_refused_before_any_work(argv, message, tmp_path, capsys):
    """Refused before the corpus is read or a tokenizer trained: nothing is written to the output folders."""
    out = tmp_path / "out"
    assert main([*argv, "--output-dir", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "out_checkpoints").exists()


@pytest.mark.parametrize("command", ["pretrain", "compare"])
def test_output_folder_that_cannot_be_created_is_refused_before_any_work(command, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    assert main([command, "--output-dir", str(blocker / "run")]) == 2
    assert f"{blocker / 'run'}: cannot create this folder, {blocker} is a file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # no tokenizer, no checkpoints


def test_one_line_corpus_says_it_is_too_small_to_split(tmp_path, capsys):
    corpus = _write(tmp_path / "one.txt", "भारत एक विशाल देश है और यहाँ बहुत लोग रहते हैं\n")
    assert main(["pretrain", "--corpus", corpus, "--output-dir", str(tmp_path / "out"), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert f"corpus {corpus} is too small to split" in err and "leaves none for validation" in err
