"""GPT-BERT: one GPT-2 stack, causal or bidirectional per example, causal LM + masked next-token prediction (MNTP)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    AutoModelForCausalLM,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    pipeline,
)

import hindi_models  # noqa: F401  (registers GPT-BERT with the Auto classes)
from hindi_models import configuration_gpt_bert, modeling_gpt_bert
from hindi_models.architectures import ARCHITECTURES
from hindi_models.evaluation import detect_kinds
from hindi_models.factory import ModelFactory
from hindi_models.configuration_gpt_bert import GPTBERTConfig
from hindi_models.modeling_gpt_bert import (
    GPTBERTForCausalLM,
    GPTBERTForMaskedLM,
    GPTBERTForPreTraining,
    GPTBERTModel,
)
from hindi_models.models import build_model, count_parameters, make_model_config
from hindi_models.presets import CAUSAL_FRACTION, PresetError, load_preset
from hindi_models.tokenizer import CLS_ID, MASK_ID, PAD_ID, SEP_ID
from test_hub_tokenizer import test_text_generation_pipeline_continues_the_prompt as _continues_the_prompt
from test_pretrain import tokenizer_dir  # noqa: F401 (a fixture)
from training.collators import GPTBERTCollator, MaskedLMCollator, make_collator
from training.report import read_log

TINY = dict(vocab_size=120, n_embd=32, n_layer=2, n_head=2, n_inner=64, n_positions=64, pad_token_id=0,
            bos_token_id=2, eos_token_id=3)


def tiny_model(cls=GPTBERTForPreTraining, **overrides):
    torch.manual_seed(0)
    return cls(GPTBERTConfig(**{**TINY, **overrides})).eval()


# ------------------------------------------------------------------------------ size, registry


@pytest.mark.parametrize("preset", ["tiny", "mini"])
def test_parameters_equal_gpt(preset):
    """One stack of the preset's shape: GPT-BERT has GPT's parameters (the issue allows 2%; it is 0)."""
    counts = {}
    for model_type in ("gpt", "gpt_bert"):
        with torch.device("meta"):
            model = build_model(load_preset(preset, model_type=model_type))
        counts[model_type] = count_parameters(model)[0]
    assert abs(counts["gpt_bert"] - counts["gpt"]) <= 0.02 * counts["gpt"]
    assert counts["gpt_bert"] == counts["gpt"], counts


def test_registry_entry():
    arch = ARCHITECTURES["gpt_bert"]
    assert arch.remote_code and arch.generates and arch.tokenizer_template == "causal"
    assert configuration_gpt_bert.AUTO_MAP == {
        "AutoConfig": "configuration_gpt_bert.GPTBERTConfig",
        **{auto: f"modeling_gpt_bert.{cls.__name__}" for auto, cls in arch.auto_classes.items()}}
    for cls in set(arch.auto_classes.values()):  # what `save_pretrained` records is the same map
        assert configuration_gpt_bert.AUTO_MAP[cls._auto_class] == f"modeling_gpt_bert.{cls.__name__}"
    config = make_model_config(load_preset("tiny", model_type="gpt_bert"))
    gpt = make_model_config(load_preset("tiny", model_type="gpt"))
    assert type(config) is GPTBERTConfig and config.model_type == "gpt_bert"
    gpt_values = {k: v for k, v in gpt.to_dict().items() if k != "model_type"}
    assert {k: v for k, v in config.to_dict().items() if k in gpt_values} == gpt_values
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id, config.mask_token_id) == (0, 2, 3, 4)
    assert detect_kinds(config) == {"causal": "causal", "masked": "masked"}
    assert arch.describe_objective(0.15, 0.5, 0.5, 0.125) == ("causal LM on 12.5% of rows + masked next-token "
                                                             "prediction (15%, 80/10/10)")


def test_same_initial_weights_as_gpt():
    """GPT-2's init, its 1/sqrt(2·layers) residual scaling included: seeded alike, GPT-BERT starts where GPT does."""
    torch.manual_seed(0)
    gpt = build_model(load_preset("tiny", model_type="gpt"), 300)
    torch.manual_seed(0)
    gpt_bert = build_model(load_preset("tiny", model_type="gpt_bert"), 300)
    assert gpt.state_dict().keys() == gpt_bert.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(gpt.state_dict().values(), gpt_bert.state_dict().values()))
    assert gpt_bert.transformer.h[0].attn.c_proj.weight.std() < 0.015  # 0.02 / sqrt(4)


# ------------------------------------------------------------------------------ the per-example attention mask


def test_each_row_gets_its_own_attention():
    model = tiny_model(GPTBERTModel)
    ids = torch.randint(5, 120, (3, 10), generator=torch.Generator().manual_seed(1))
    is_causal = torch.tensor([True, False, True])
    with torch.no_grad():
        mixed = model(ids, is_causal=is_causal).last_hidden_state
        causal = model(ids).last_hidden_state
        bidirectional = model(ids, is_causal=False).last_hidden_state
        changed = ids.clone()
        changed[:, -1] = 7
        later = model(changed, is_causal=is_causal).last_hidden_state
    torch.testing.assert_close(mixed[is_causal], causal[is_causal])
    torch.testing.assert_close(mixed[~is_causal], bidirectional[~is_causal])
    # a causal row's earlier outputs ignore the last token; a bidirectional row's see it
    torch.testing.assert_close(later[is_causal, :-1], mixed[is_causal, :-1])
    assert not torch.allclose(later[~is_causal, 0], mixed[~is_causal, 0])
    stock = GPT2LMHeadModel(GPT2LMHeadModel.config_class(**TINY)).eval()
    stock.load_state_dict(tiny_model(GPTBERTForCausalLM).state_dict())
    with torch.no_grad():
        torch.testing.assert_close(tiny_model(GPTBERTForCausalLM)(ids).logits, stock(ids).logits)


def test_padding_is_hidden_in_both_modes():
    model = tiny_model(GPTBERTModel)
    ids = torch.randint(5, 120, (2, 8), generator=torch.Generator().manual_seed(2))
    padded = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(2, 8), torch.zeros(2, 3)], dim=1).long()
    is_causal = torch.tensor([True, False])
    with torch.no_grad():
        short = model(ids, is_causal=is_causal).last_hidden_state
        long = model(padded, attention_mask=mask, is_causal=is_causal).last_hidden_state
    torch.testing.assert_close(long[:, :8], short)


def test_bidirectional_rows_refuse_a_cache():
    with pytest.raises(ValueError, match="cannot use a KV cache"):
        tiny_model(GPTBERTModel)(torch.tensor([[2, 7, 8]]), is_causal=False, use_cache=True)


# ------------------------------------------------------------------------------ MNTP


def test_mntp_scores_the_label_of_position_k_plus_1_at_output_k():
    """Hand-made batch: row 0 causal, row 1 MNTP with position k+1 masked; one head, one (causal) alignment."""
    model = tiny_model()
    ids = torch.randint(5, 120, (2, 9), generator=torch.Generator().manual_seed(3))
    k = 4
    inputs = ids.clone()
    inputs[1, k + 1] = MASK_ID
    labels = ids.clone()
    labels[1] = -100
    labels[1, k + 1] = ids[1, k + 1]
    is_causal = torch.tensor([True, False])
    with torch.no_grad():
        out = model(inputs, labels=labels, is_causal=is_causal)
        dense = model(inputs, is_causal=is_causal).logits
    # sparse logits: the causal row's 8 shifted labels, then the masked row's one, read at output k
    assert out.logits.shape == (8 + 1, 120)
    torch.testing.assert_close(out.logits[-1], dense[1, k])
    mlm = torch.nn.functional.cross_entropy(dense[1, k][None], ids[1, k + 1][None])
    clm = torch.nn.functional.cross_entropy(dense[0, :-1], ids[0, 1:])
    torch.testing.assert_close(out.mlm_loss, mlm)
    torch.testing.assert_close(out.clm_loss, clm)
    torch.testing.assert_close(out.loss, 0.5 * clm + 0.5 * mlm)  # weighted by the rows' shares
    # with gradients (training), the chunked head gives the same three losses and the gradients of the stock ones
    training = tiny_model(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0).train()  # the same weights, no dropout
    trained = training(inputs, labels=labels, is_causal=is_causal)
    assert trained.logits is None
    for name in ("loss", "clm_loss", "mlm_loss"):
        torch.testing.assert_close(getattr(trained, name), getattr(out, name))
    trained.loss.backward()
    chunked_grads = {name: p.grad.clone() for name, p in training.named_parameters()}
    training.zero_grad()
    dense = training(inputs, is_causal=is_causal).logits
    stock = 0.5 * torch.nn.functional.cross_entropy(dense[1, k][None], ids[1, k + 1][None]) + \
        0.5 * torch.nn.functional.cross_entropy(dense[0, :-1], ids[0, 1:])
    stock.backward()
    for name, p in training.named_parameters():
        torch.testing.assert_close(chunked_grads[name], p.grad, atol=1e-6, rtol=1e-5, msg=name)
    # the masked-LM class undoes the shift: position k+1's logits are output k's, position 0's are uniform
    masked_lm = tiny_model(GPTBERTForMaskedLM)
    with torch.no_grad():
        logits = masked_lm(inputs[1:]).logits
        full = masked_lm(inputs[1:], labels=labels[1:])
    torch.testing.assert_close(logits[0, k + 1], dense[1, k])
    assert torch.equal(logits[0, 0], torch.zeros(120))
    torch.testing.assert_close(full.loss, mlm)


def test_one_objective_alone():
    model = tiny_model()
    ids = torch.randint(5, 120, (2, 6), generator=torch.Generator().manual_seed(4))
    causal = model(ids, labels=ids)
    assert causal.mlm_loss is None
    torch.testing.assert_close(causal.loss, causal.clm_loss)
    torch.testing.assert_close(causal.loss, tiny_model(GPTBERTForCausalLM)(ids, labels=ids).loss)
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    masked = model(ids, labels=labels, is_causal=False)
    assert masked.clm_loss is None and torch.isfinite(masked.loss)


# ------------------------------------------------------------------------------ collator


@pytest.fixture(scope="module")
def blocks():
    return torch.randint(5, 800, (16, 64), generator=torch.Generator().manual_seed(0)).tolist()


@pytest.mark.parametrize("fraction", [1 / 16, 1 / 8, CAUSAL_FRACTION])
def test_collator_causal_share(tokenizer, fraction):
    collator = make_collator("gpt_bert", tokenizer, seed=0, causal_fraction=fraction)
    assert type(collator) is GPTBERTCollator and collator.causal_fraction == fraction
    g = torch.Generator().manual_seed(1)
    shares = [collator(torch.randint(5, 800, (8, 16), generator=g).tolist())["is_causal"].float().mean()
              for _ in range(400)]
    assert torch.stack(shares).mean().item() == pytest.approx(fraction, abs=0.02)


def test_collator_rows(tokenizer, blocks):
    batch = make_collator("gpt_bert", tokenizer, seed=0, causal_fraction=0.5)(blocks)
    assert set(batch) == {"input_ids", "attention_mask", "labels", "is_causal"}
    original, causal = torch.tensor(blocks), batch["is_causal"]
    assert causal.sum() == 8
    assert torch.equal(batch["input_ids"][causal], original[causal])
    assert torch.equal(batch["labels"][causal], original[causal])
    # MNTP rows are the masked collator's rows (same seed, same masks), position 0 never masked
    bert = make_collator("bert", tokenizer, seed=0)(blocks)
    assert isinstance(make_collator("gpt_bert", tokenizer), MaskedLMCollator)
    assert (batch["labels"][~causal, 0] == -100).all()
    assert torch.equal(batch["labels"][~causal, 1:], bert["labels"][~causal, 1:])
    assert torch.equal(batch["input_ids"][~causal, 1:], bert["input_ids"][~causal, 1:])
    for fraction, expected in ((0.0, 0), (1.0, 16)):
        assert make_collator("gpt_bert", tokenizer, causal_fraction=fraction)(blocks)["is_causal"].sum() == expected
    with pytest.raises(ValueError, match=r"causal_fraction must be in \[0, 1\]"):
        make_collator("gpt_bert", tokenizer, causal_fraction=1.5)


def test_collator_seeding(tokenizer, blocks):
    """Rows and masks come from (seed, epoch, the batch's tokens): a re-collated batch is the same batch."""
    a = make_collator("gpt_bert", tokenizer, seed=3)
    b = make_collator("gpt_bert", tokenizer, seed=3)
    first = a(blocks)
    a(blocks[::-1])  # what came before does not matter
    for key, value in a(blocks).items():
        assert torch.equal(value, first[key]) and torch.equal(b(blocks)[key], value), key
    b.epoch = 1
    assert not torch.equal(b(blocks)["labels"], first["labels"])


def test_validation_batch_holds_every_block_both_ways(tokenizer, blocks):
    collator = make_collator("gpt_bert", tokenizer, seed=0)
    both = collator.both_objectives(blocks[:4])
    assert both["is_causal"].tolist() == [True] * 4 + [False] * 4
    assert torch.equal(both["labels"][:4], torch.tensor(blocks[:4]))
    masked = make_collator("hybrid", tokenizer, seed=0)(blocks[:4])
    assert torch.equal(both["input_ids"][4:, 1:], masked["mlm_input_ids"][:, 1:])


def test_preset_causal_fraction(tmp_path):
    assert load_preset("tiny").hyperparameters("gpt_bert").causal_fraction == CAUSAL_FRACTION == 0.5
    path = tmp_path / "p.yaml"
    path.write_text("model_type: gpt_bert\ntraining:\n  gpt_bert: {causal_fraction: 0.25}\n")
    assert load_preset(path).hyperparameters().causal_fraction == 0.25
    path.write_text("model_type: gpt_bert\ntraining:\n  gpt_bert: {causal_fraction: 2}\n")
    with pytest.raises(PresetError, match=r"p\.yaml: training\.gpt_bert\.causal_fraction: must be in \[0, 1\]"):
        load_preset(path).hyperparameters()


def test_causal_fraction_flag_reaches_the_collator(tmp_path):
    from training.cli import build_parser
    from training.pretrain import PretrainSettings, start_run

    args = build_parser().parse_args(["pretrain", "--output-dir", "x", "--causal-fraction", "0.25"])
    assert args.causal_fraction == 0.25
    assert build_parser().parse_args(["compare", "--causal-fraction", "0.5"]).causal_fraction == 0.5
    run = start_run(PretrainSettings(model_type="gpt_bert", output_dir=tmp_path / "o",
                                     hyperparameters={"causal_fraction": 0.25}))
    assert run.hparams.causal_fraction == 0.25


# ------------------------------------------------------------------------------ saved folders


@pytest.fixture(scope="module")
def folder(tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt_bert")
    torch.manual_seed(0)
    factory = ModelFactory(load_preset("tiny", model_type="gpt_bert"), output_root=root, experiment_name="exp")
    model = factory.create_model(tokenizer=tokenizer, verbose=False)
    return factory.save_model(model, tokenizer, checkpoint_name="gpt_bert")


def test_generate_with_and_without_cache_agree(folder, tokenizer):
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert type(model) is GPTBERTForCausalLM
    prompt = tokenizer("भारत एक", return_tensors="pt").input_ids
    kwargs = dict(max_new_tokens=20, min_new_tokens=20, do_sample=False, pad_token_id=PAD_ID)
    cached = model.generate(prompt, use_cache=True, **kwargs)
    assert cached.shape == (1, prompt.shape[1] + 20)
    assert torch.equal(cached, model.generate(prompt, use_cache=False, **kwargs))


def test_text_generation_pipeline_continues_the_prompt(folder):
    _continues_the_prompt({"gpt_bert": folder}, "gpt_bert")


def test_fill_mask_and_classification_heads_load_from_the_folder(folder, tokenizer):
    fill = pipeline("fill-mask", model=str(folder))
    out = fill("भारत एक [MASK] है।", top_k=3)
    assert len(out) == 3 and all("[MASK]" not in row["sequence"] for row in out)
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    batch = tokenizer(["भारत एक देश है।", "आज बारिश हुई।"], padding=True, return_tensors="pt")
    seq = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)
    out = seq(**batch, labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)
    out.loss.backward()
    assert seq.transformer.wte.weight.grad is not None
    tagger = AutoModelForTokenClassification.from_pretrained(folder, num_labels=5)
    out = tagger(**batch, labels=torch.zeros_like(batch.input_ids))
    assert out.logits.shape == (*batch.input_ids.shape, 5) and torch.isfinite(out.loss)


def test_remote_code_files_are_the_package_files(folder):
    package = os.path.dirname(modeling_gpt_bert.__file__)
    for name in ("configuration_gpt_bert.py", "modeling_gpt_bert.py", "losses.py"):
        with open(os.path.join(package, name), "rb") as a, open(folder / name, "rb") as b:
            assert a.read() == b.read(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "gpt_bert" and config["auto_map"] == configuration_gpt_bert.AUTO_MAP
    assert config["architectures"] == ["GPTBERTForPreTraining"]


FRESH = textwrap.dedent(
    """
    import importlib.abc, sys
    class BlockPackage(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("hindi_models", "training"):
                raise ImportError(f"{name} is blocked in this test")
    sys.meta_path.insert(0, BlockPackage())
    try:
        import hindi_models
        raise SystemExit("hindi_models should not be importable here")
    except ImportError:
        pass
    import torch, transformers
    from safetensors.torch import load_file
    expected = load_file(sys.argv[3])
    ids = expected["input_ids"]
    for folder, names in ((sys.argv[1], ["AutoModel", "AutoModelForPreTraining", "AutoModelForCausalLM",
                                         "AutoModelForMaskedLM"]),
                          (sys.argv[2], ["AutoModelForSequenceClassification", "AutoModelForTokenClassification"])):
        for name in names:
            model = getattr(transformers, name).from_pretrained(folder, trust_remote_code=True).eval()
            with torch.no_grad():
                out = model(ids)
            got = out.last_hidden_state if name == "AutoModel" else out.logits
            assert torch.equal(got, expected[name]), name
            print("ok", name, type(model).__name__)
    """
)


def test_fresh_process_round_trip_is_bitwise_identical(folder, tmp_path):
    """Every Auto class, loaded in a new process where hindi_models is NOT importable: identical outputs."""
    import transformers

    classifier_folder = tmp_path / "classifier"
    torch.manual_seed(1)
    transformers.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3).save_pretrained(
        classifier_folder)
    ids = torch.randint(5, 800, (2, 16), generator=torch.Generator().manual_seed(0))
    expected = {"input_ids": ids}
    for source, names in ((folder, ["AutoModel", "AutoModelForPreTraining", "AutoModelForCausalLM",
                                    "AutoModelForMaskedLM"]),
                          (classifier_folder, ["AutoModelForSequenceClassification",
                                               "AutoModelForTokenClassification"])):
        for name in names:
            model = getattr(transformers, name).from_pretrained(source).eval()
            with torch.no_grad():
                out = model(ids)
            expected[name] = out.last_hidden_state if name == "AutoModel" else out.logits
    assert not torch.equal(expected["AutoModelForMaskedLM"][:, 1:], expected["AutoModelForCausalLM"][:, :-1])
    save_file({k: v.contiguous() for k, v in expected.items()}, str(tmp_path / "expected.safetensors"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", FRESH, str(folder), str(classifier_folder),
                             str(tmp_path / "expected.safetensors")],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("ok ") == 6, result.stdout


# ------------------------------------------------------------------------------ a toy model trained to copy


def copy_tokenizer(words: int) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: the project's five special tokens at ids 0-4, then w0 ... w{words-1}."""
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])}
    vocab.update({f"w{i}": 5 + i for i in range(words)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", CLS_ID)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def test_fill_mask_pipeline_on_a_toy_model_trained_to_copy(tmp_path):
    """`[CLS] x1..x6 [SEP] x1..x6`: a masked token of the second half is the one 7 positions to its left. Trained
    with the mixed objective, the stock fill-mask pipeline must put it first (an off-by-one in the head's shift
    would put a neighbour there)."""
    tok, words, half = copy_tokenizer(16), 16, 6
    config = GPTBERTConfig(**{**TINY, "vocab_size": 5 + words, "n_positions": 16, "resid_pdrop": 0.0,
                              "embd_pdrop": 0.0, "attn_pdrop": 0.0})
    torch.manual_seed(0)
    model = GPTBERTForPreTraining(config).train()
    collator = make_collator("gpt_bert", tok, seed=0, mlm_probability=0.3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices this small: one thread is ~10x faster than two on a busy machine
    try:
        for _ in range(200):  # 200 of 200 held-out copies come out right from about step 100 on
            first = torch.randint(5, 5 + words, (32, half), generator=g)
            rows = torch.cat([torch.full((32, 1), CLS_ID), first, torch.full((32, 1), SEP_ID), first], dim=1)
            loss = model(**collator(rows.tolist())).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    fill = pipeline("fill-mask", model=str(tmp_path))
    assert type(fill.model) is GPTBERTForMaskedLM
    g = torch.Generator().manual_seed(1)
    correct = 0
    for trial in range(12):
        first = [f"w{i}" for i in torch.randint(0, words, (half,), generator=g).tolist()]
        position = trial % half
        second = [*first[:position], "[MASK]", *first[position + 1:]]
        top = fill(" ".join([*first, "[SEP]", *second]), top_k=1)[0]
        correct += top["token_str"].strip() == first[position]
    assert correct == 12, correct


# ------------------------------------------------------------------------------ pretrain / evaluate / resume


def test_pretrain_evaluate_and_resume_end_to_end(tmp_path, tokenizer_dir, sample_lines):
    """`hindi-lm pretrain --model-type gpt_bert --preset tiny`, then `hindi-lm evaluate` on the folder; a run
    resumed from the middle checkpoint logs the uninterrupted run's losses (masks and rows are seeded)."""
    from training.cli import main

    out = tmp_path / "gpt_bert"
    args = ["pretrain", "--model-type", "gpt_bert", "--preset", "tiny", "--tokenizer", str(tokenizer_dir),
            "--max-steps", "8", "--save-steps", "4", "--eval-steps", "4", "--logging-steps", "1",
            "--batch-size", "8", "--learning-rate", "3e-3", "--precision", "fp32", "--report-to", "none",
            "--seed", "7"]
    assert main([*args, "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model_type"] == "gpt_bert" and metrics["hyperparameters"]["causal_fraction"] == CAUSAL_FRACTION
    assert 0 < metrics["validation_clm_loss"] < 8 and 0 < metrics["validation_mlm_loss"] < 8
    for name in ("model.safetensors", "config.json", "configuration_gpt_bert.py", "modeling_gpt_bert.py",
                 "tokenizer.json", "README.md"):
        assert (out / name).is_file(), name
    assert "GPT-BERT" in (out / "README.md").read_text()

    sentences = [" ".join(line.split()[:6]) for line in sample_lines[:8]]  # short: PLL masks every token
    texts, pairs = tmp_path / "texts.txt", tmp_path / "pairs.jsonl"
    texts.write_text("\n".join(sentences), encoding="utf-8")
    pairs.write_text("".join(json.dumps({"good": good, "bad": " ".join(good.split()[::-1]), "phenomenon": "order"},
                                        ensure_ascii=False) + "\n" for good in sentences[:6]), encoding="utf-8")
    results = tmp_path / "results.json"
    assert main(["evaluate", "--model", str(out), "--eval-text", str(texts), "--minimal-pairs", str(pairs),
                 "--quiet", "--output", str(results)]) == 0
    sections = json.loads(results.read_text())["sections"]
    assert {name: s["kind"] for name, s in sections.items()} == {"causal": "causal", "masked": "masked"}
    assert sections["causal"]["class"] == "GPTBERTForCausalLM" and sections["masked"]["class"] == "GPTBERTForMaskedLM"
    assert sections["causal"]["language_model"]["bits_per_char"] > 0
    assert sections["masked"]["language_model"]["pseudo_bits_per_char"] > 0
    assert sections["masked"]["minimal_pairs"]["total"] == 6

    # Resume: the checkpoints up to step 6 of the same run, continued to step 12.
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "gpt_bert_checkpoints", tmp_path / "resumed_checkpoints")
    shutil.rmtree(tmp_path / "resumed_checkpoints" / "checkpoint-8")
    assert main([*args, "--output-dir", str(resumed), "--resume"]) == 0
    full = [(r["step"], r["loss"]) for r in read_log(tmp_path / "gpt_bert_checkpoints" / "log.jsonl") if "loss" in r]
    again = [(r["step"], r["loss"]) for r in read_log(tmp_path / "resumed_checkpoints" / "log.jsonl") if "loss" in r]
    assert [s for s, _ in again] == list(range(1, 9))
    assert [loss for _, loss in again] == pytest.approx([loss for _, loss in full], abs=1e-5)
