"""What a transformers user gets from a saved folder's tokenizer (issue: generation prompts, tokenizer spaces and
lengths, the 4.x-readable class): each test here failed with the tokenizer of commit 0d1f797."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast, pipeline

from hindi_models.tokenizer import CLS_ID, MASK_ID, SEP_ID

FIRST = "भारत एक देश"
LATER = "यह भारत एक देश"


def test_first_word_of_a_line_is_tokenized_like_anywhere_else(tokenizer):
    first = tokenizer.tokenize(FIRST)
    later = tokenizer.tokenize(LATER)
    assert later[-len(first):] == first
    assert first[0].startswith(" ")  # every word carries its space, the first one too
    words = tokenizer(FIRST.split(), is_split_into_words=True, add_special_tokens=False)["input_ids"]
    assert words == tokenizer(FIRST, add_special_tokens=False)["input_ids"]  # tagging sees the same tokens


def test_no_space_token_around_special_tokens(tokenizer):
    assert " " not in tokenizer.tokenize("एक [MASK] है")
    assert tokenizer("एक [MASK] है", add_special_tokens=False)["input_ids"][1] == MASK_ID
    sentence = "भारत एक विशाल देश है"
    written = tokenizer("[CLS] " + sentence + " [SEP]", add_special_tokens=False)["input_ids"]
    assert written == tokenizer(sentence)["input_ids"]  # minicons-style input = the tokenizer's own template
    assert tokenizer.decode(tokenizer("एक [MASK] है", add_special_tokens=False)["input_ids"],
                            skip_special_tokens=True) == "एक है"


@pytest.mark.parametrize("model_type, ends_open", [("gpt", True), ("hybrid", True), ("bert", False)])
def test_saved_folder_tokenizer_opens_prompts_for_causal_models(saved_models, model_type, ends_open):
    tok = AutoTokenizer.from_pretrained(saved_models[model_type])
    ids = tok("भारत एक")["input_ids"]
    assert ids[0] == CLS_ID and (ids[-1] != SEP_ID) == ends_open and SEP_ID not in ids[:-1]


@pytest.mark.parametrize("model_type", ["gpt", "hybrid"])
def test_text_generation_pipeline_continues_the_prompt(saved_models, model_type):
    folder = saved_models[model_type]
    generate = pipeline("text-generation", model=str(folder), trust_remote_code=True)
    seen = []
    model = generate.model
    original = model.forward

    def spy(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and not seen:
            seen.append(ids[0].tolist())
        return original(*args, **kwargs)

    model.forward = spy
    out = generate("भारत एक", max_new_tokens=4, do_sample=False)[0]["generated_text"]
    prompt = generate.tokenizer("भारत एक", add_special_tokens=False)["input_ids"]
    assert seen[0] == [CLS_ID, *prompt]  # the model reads `[CLS] prompt`, not a closed document
    assert out.startswith("भारत एक")


def test_saved_folder_tokenizer_carries_the_model_length(saved_models):
    folder = saved_models["gpt"]
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert tok.model_max_length == model.config.n_positions == 128
    long_text = " ".join(["भारत एक विशाल देश है"] * 200)
    ids = tok(long_text, truncation=True, return_tensors="pt")["input_ids"]
    assert ids.shape[1] == 128
    with torch.no_grad():
        assert model(ids).logits.shape[1] == 128  # was an IndexError past the 128 positions


@pytest.mark.parametrize("model_type", ["gpt", "bert", "hybrid"])
def test_tokenizer_class_is_readable_by_transformers_4(saved_models, model_type):
    folder = saved_models[model_type]
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    direct = PreTrainedTokenizerFast.from_pretrained(folder)
    assert direct("भारत एक")["input_ids"] == AutoTokenizer.from_pretrained(folder)("भारत एक")["input_ids"]


def test_hybrid_tokenizer_loads_without_remote_code(saved_models, tmp_path):
    """In a process without hindi_models, the hybrid's tokenizer needs none of the folder's code: transformers 5
    reads config.json before tokenizer_config.json, so `trust_remote_code=False` says so without a prompt
    (transformers 4 reads `tokenizer_class` first and never asks)."""
    script = textwrap.dedent(f"""
        import sys
        sys.modules["hindi_models"] = None
        from transformers import AutoTokenizer, PreTrainedTokenizerFast
        folder = {str(saved_models["hybrid"])!r}
        tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        direct = PreTrainedTokenizerFast.from_pretrained(folder)
        print(type(tok).__name__, tok("भारत")["input_ids"][0], direct("भारत")["input_ids"] == tok("भारत")["input_ids"])
    """)
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Do you wish to run the custom code" not in done.stdout + done.stderr
    assert done.stdout.split()[-3:] == ["TokenizersBackend", str(CLS_ID), "True"]
