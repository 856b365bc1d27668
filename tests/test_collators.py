"""Collators: GPT labels, BERT 15% / 80-10-10 masking, hybrid's two copies, padding, special tokens."""

import pytest
import torch
from transformers import DataCollatorForLanguageModeling

from hindi_models.tokenizer import CLS_ID, MASK_ID, PAD_ID, SEP_ID, train_tokenizer
from training.collators import HybridCollator, MaskedLMCollator, make_collator

SPECIAL = torch.arange(5)  # [PAD] [UNK] [CLS] [SEP] [MASK]
HINDI = [
    "भारत एक विशाल देश है। यहाँ अनेक भाषाएँ बोली जाती हैं।",
    "हिंदी भारत की राजभाषा है और करोड़ों लोग इसे बोलते हैं।",
    "बच्चे स्कूल में पढ़ाई करते हैं और शाम को खेलते हैं।",
    "गंगा नदी हिमालय से निकलकर बंगाल की खाड़ी में गिरती है।",
]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(HINDI * 10, vocab_size=1000, show_progress=False)


def packed_blocks(tok, n: int = 256, length: int = 512, seed: int = 0) -> list[list[int]]:
    """Blocks like tokenize_and_pack's: random normal tokens with a [SEP] [CLS] boundary every ~40 tokens."""
    g = torch.Generator().manual_seed(seed)
    blocks = torch.randint(5, len(tok), (n, length), generator=g)
    for start in range(0, length - 1, 40):
        blocks[:, start], blocks[:, start + 1] = SEP_ID, CLS_ID
    return blocks.tolist()


def variable_examples(tok) -> list[dict]:
    return [{"input_ids": tok(t)["input_ids"]} for t in HINDI + ["क", ""]]


def masking_shares(inputs: torch.Tensor, labels: torch.Tensor, original: torch.Tensor) -> tuple[float, ...]:
    chosen = labels != -100
    normal = ~torch.isin(original, SPECIAL)
    n = chosen.sum()
    as_mask = (inputs[chosen] == MASK_ID).sum() / n
    unchanged = (inputs[chosen] == original[chosen]).sum() / n
    return (n / normal.sum()).item(), as_mask.item(), 1 - as_mask.item() - unchanged.item(), unchanged.item()


def test_factory_types_and_error(tok):
    gpt = make_collator("gpt", tok)
    assert type(gpt) is DataCollatorForLanguageModeling and gpt.mlm is False
    bert = make_collator("bert", tok)
    assert isinstance(bert, MaskedLMCollator) and isinstance(bert, DataCollatorForLanguageModeling)
    assert (bert.mlm_probability, bert.mask_replace_prob, bert.random_replace_prob) == (0.15, 0.8, 0.1)
    assert isinstance(make_collator("hybrid", tok, mlm_probability=0.3), HybridCollator)
    with pytest.raises(ValueError, match=r"model_type='t5' is not one of \('gpt', 'bert', 'hybrid', 'gpt_bert'\)"):
        make_collator("t5", tok)


def test_gpt_labels_are_inputs_with_padding_ignored(tok):
    blocks = packed_blocks(tok, n=4, length=64)
    batch = make_collator("gpt", tok)([{"input_ids": b} for b in blocks])
    assert torch.equal(batch["input_ids"], torch.tensor(blocks)) and torch.equal(batch["labels"], batch["input_ids"])
    assert batch["attention_mask"].all()
    padded = make_collator("gpt", tok, pad_to_multiple_of=8)(variable_examples(tok))
    pad = padded["attention_mask"] == 0
    assert padded["input_ids"].shape[1] % 8 == 0 and pad.any()
    assert (padded["input_ids"][pad] == PAD_ID).all() and (padded["labels"][pad] == -100).all()
    assert torch.equal(padded["labels"][~pad], padded["input_ids"][~pad])


def test_bert_masking_statistics(tok):
    blocks = packed_blocks(tok)
    original = torch.tensor(blocks)
    batch = make_collator("bert", tok, seed=0)([{"input_ids": b} for b in blocks])
    chosen, as_mask, as_random, unchanged = masking_shares(batch["input_ids"], batch["labels"], original)
    assert chosen == pytest.approx(0.15, abs=0.01)
    assert as_mask == pytest.approx(0.8, abs=0.02)
    assert as_random == pytest.approx(0.1, abs=0.02)
    assert unchanged == pytest.approx(0.1, abs=0.02)
    labels = batch["labels"]
    assert torch.equal(labels[labels != -100], original[labels != -100])  # labels hold the original tokens
    assert torch.equal(batch["input_ids"][labels == -100], original[labels == -100])  # the rest is untouched


def test_special_tokens_and_padding_never_masked(tok):
    examples = variable_examples(tok) * 50
    collator = make_collator("bert", tok, mlm_probability=0.9, seed=0)  # mask almost everything
    batch = collator(examples)
    special = torch.isin(batch["input_ids"], SPECIAL) & (batch["labels"] == -100)
    original_special = torch.zeros_like(special)
    for row, ex in enumerate(examples):
        ids = torch.tensor(ex["input_ids"])
        original_special[row, : len(ids)] = torch.isin(ids, SPECIAL)
        original_special[row, len(ids) :] = True  # padding
    assert (batch["labels"][original_special] == -100).all()
    assert (batch["input_ids"][batch["attention_mask"] == 0] == PAD_ID).all()
    assert special[original_special].all()
    assert (batch["labels"][~original_special] != -100).float().mean() > 0.8


def test_random_replacements_never_draw_special_tokens(tok):
    blocks = packed_blocks(tok, n=64, length=512)
    original = torch.tensor(blocks)
    # Every chosen position gets a random token: ~16k draws, where the parent would draw ~80 specials.
    collator = make_collator("bert", tok, mlm_probability=0.5, mask_replace_prob=0.0, random_replace_prob=1.0, seed=0)
    batch = collator(blocks)
    chosen = batch["labels"] != -100
    assert chosen.sum() > 10_000
    assert not torch.isin(batch["input_ids"][chosen], SPECIAL).any()
    assert (batch["input_ids"][chosen] != original[chosen]).float().mean() > 0.99
    # Same with the default 80/10/10: the only special token at a chosen position is [MASK].
    batch = make_collator("bert", tok, seed=1)(blocks)
    chosen_ids = batch["input_ids"][batch["labels"] != -100]
    assert not torch.isin(chosen_ids[chosen_ids != MASK_ID], SPECIAL).any()


def test_hybrid_copies_agree(tok):
    blocks = packed_blocks(tok, n=128, length=256)
    original = torch.tensor(blocks)
    batch = make_collator("hybrid", tok, seed=0)([{"input_ids": b} for b in blocks])
    assert set(batch) == {"input_ids", "attention_mask", "labels", "mlm_input_ids", "mlm_labels"}
    assert torch.equal(batch["input_ids"], original) and torch.equal(batch["labels"], original)
    unmasked = batch["mlm_labels"] == -100
    assert torch.equal(batch["mlm_input_ids"][unmasked], batch["input_ids"][unmasked])
    chosen, as_mask, as_random, unchanged = masking_shares(batch["mlm_input_ids"], batch["mlm_labels"], original)
    assert chosen == pytest.approx(0.15, abs=0.01) and as_mask == pytest.approx(0.8, abs=0.02)
    assert as_random == pytest.approx(0.1, abs=0.02) and unchanged == pytest.approx(0.1, abs=0.02)


def test_hybrid_variable_length_lists(tok):
    examples = [ex["input_ids"] for ex in variable_examples(tok)]  # plain lists: no attention_mask given
    batch = make_collator("hybrid", tok, pad_to_multiple_of=16, seed=0)(examples)
    assert batch["input_ids"].shape[1] % 16 == 0
    for row, ids in enumerate(examples):
        n = len(ids)
        assert batch["input_ids"][row, :n].tolist() == ids and (batch["input_ids"][row, n:] == PAD_ID).all()
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (batch["input_ids"].shape[1] - n)
        assert batch["labels"][row, :n].tolist() == ids and (batch["labels"][row, n:] == -100).all()
        assert (batch["mlm_labels"][row, n:] == -100).all() and (batch["mlm_input_ids"][row, n:] == PAD_ID).all()


def test_seed_makes_masking_reproducible(tok):
    blocks = packed_blocks(tok, n=8, length=128)
    a = make_collator("bert", tok, seed=3)(blocks)
    b = make_collator("bert", tok, seed=3)(blocks)
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])


def test_collators_take_tokenize_and_pack_output(tok):
    import datasets

    from training.packing import tokenize_and_pack

    packed, _ = tokenize_and_pack(datasets.Dataset.from_dict({"text": HINDI * 20}), tok, block_size=32)
    features = [packed[i] for i in range(8)]
    for model_type in ("gpt", "bert", "hybrid", "gpt_bert"):
        batch = make_collator(model_type, tok, seed=0)(features)
        assert batch["input_ids"].shape == (8, 32) and batch["attention_mask"].all()


def test_masked_lm_collator_rejects_numpy(tok):
    with pytest.raises(ValueError, match="return_tensors='pt' only"):
        MaskedLMCollator(tok, return_tensors="np")


def test_validation_masks_do_not_depend_on_the_training_epoch(tok):
    """`validation_losses` and Trainer's evaluations inside training score on `VALIDATION_EPOCH`'s masks, whatever
    epoch training is in, and give the training epoch back afterwards."""
    from types import SimpleNamespace

    from hindi_models.factory import ModelFactory
    from hindi_models.presets import load_preset
    from training.callbacks import VALIDATION_EPOCH, MaskingEpochCallback
    from training.pretrain import validation_losses

    blocks = [{"input_ids": b} for b in packed_blocks(tok, n=8, length=64)]
    collator = make_collator("bert", tok, seed=0)
    first = collator(blocks)["labels"]
    collator.epoch = 3
    assert not torch.equal(collator(blocks)["labels"], first)  # other epochs draw other masks
    torch.manual_seed(0)
    model = ModelFactory(load_preset("tiny", model_type="bert", max_length=64)).create_model(
        tokenizer=tok, verbose=False, for_pretraining=True)
    at_epoch_3 = validation_losses(model, blocks, collator, batch_size=4)
    assert collator.epoch == 3
    collator.epoch = VALIDATION_EPOCH
    assert validation_losses(model, blocks, collator, batch_size=4) == at_epoch_3

    callback, collator.epoch = MaskingEpochCallback(collator), 2
    callback.on_step_end(None, None, SimpleNamespace(should_evaluate=False))
    assert collator.epoch == 2
    callback.on_step_end(None, None, SimpleNamespace(should_evaluate=True))  # Trainer evaluates after this step
    assert collator.epoch == VALIDATION_EPOCH
    callback.on_evaluate(None, None, None)
    assert collator.epoch == 2
    callback.on_evaluate(None, None, None)  # an evaluation outside training leaves the epoch alone
    assert collator.epoch == 2
