"""Why does a small masked LM learn slowly? Same data and budget, one change at a time (CPU, ~5 min a variant).

    python benchmarks/mlm_plateau.py --blocks train_blocks.npy --val-blocks val_blocks.npy --tokenizer tok \
        --variants gpt bert preln roformer modern bert40 bertsin --out benchmarks/results/mlm_plateau_cpu.jsonl

Blocks are packed token ids (`tokenize_and_pack` output saved with numpy). Every variant is a stock Hugging Face
class at the same width and depth, trained with AdamW (0.9/0.95, weight decay 0.01), 2% warmup then cosine,
clipping 1.0, bf16 autocast, batch 32 × 128; the validation masked-token loss (15% masking, fixed masks) is
recorded six times per run (the causal loss for `gpt`):
  gpt       GPT2LMHeadModel (reference: the causal objective on the same data)
  bert      BertForMaskedLM: post-LN, learned absolute positions (what the project trains)
  preln     RobertaPreLayerNormForMaskedLM: the same with pre-LN
  roformer  RoFormerForMaskedLM: post-LN with rotary positions
  modern    ModernBertForMaskedLM: pre-LN, rotary positions, GeGLU, no biases
  bert40    BertForMaskedLM trained with 40% masking (evaluated at 15%)
  bertsin   BertForMaskedLM with sinusoidal initial position embeddings (std 0.02); bertsin0.2: std 0.2
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from transformers import (BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, GPT2Config, GPT2LMHeadModel,
                          ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast, RobertaPreLayerNormConfig,
                          RobertaPreLayerNormForMaskedLM, RoFormerConfig, RoFormerForMaskedLM)


def make_model(variant: str, vocab: int, d: int, layers: int, heads: int, seq: int):
    """The stock model of a variant, freshly initialized."""
    common = dict(vocab_size=vocab, hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=4 * d, max_position_embeddings=seq + 2, pad_token_id=0)
    if variant == "gpt":
        return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=d, n_layer=layers, n_head=heads, n_positions=seq))
    if variant == "preln":
        return RobertaPreLayerNormForMaskedLM(RobertaPreLayerNormConfig(**common))
    if variant == "roformer":
        return RoFormerForMaskedLM(RoFormerConfig(**common, embedding_size=d))
    if variant == "modern":
        return ModernBertForMaskedLM(ModernBertConfig(
            vocab_size=vocab, hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=2 * d, max_position_embeddings=seq, pad_token_id=0, cls_token_id=2, sep_token_id=3,
            bos_token_id=2, eos_token_id=3, global_attn_every_n_layers=1, local_attention=seq))
    model = BertForMaskedLM(BertConfig(**common))
    if variant.startswith("bertsin"):
        std = float(variant[len("bertsin"):] or 0.02)
        position = torch.arange(seq + 2)[:, None].float()
        angle = position / 10000 ** (torch.arange(0, d, 2).float() / d)
        table = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)  # interleaved sin/cos, std 1/√2
        with torch.no_grad():
            model.bert.embeddings.position_embeddings.weight.copy_(table * std * 2**0.5)
    return model


def run_variant(variant, train, val, tokenizer, args) -> dict:
    torch.manual_seed(0)
    model = make_model(variant, len(tokenizer), args.hidden_size, args.layers, args.heads, train.shape[1])
    causal = variant == "gpt"
    train_masks = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.4 if variant == "bert40" else 0.15,
                                                  seed=0)
    val_masks = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=1)

    def batch(rows, collator):
        ids = torch.tensor(rows.astype(np.int64))
        return {"input_ids": ids, "labels": ids.clone()} if causal else collator([{"input_ids": r} for r in ids.tolist()])

    val_batches = [batch(val[i:i + 32], val_masks) for i in range(0, len(val), 32)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    warmup = max(1, int(0.02 * args.steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    rng, curve, start = np.random.default_rng(0), [], time.time()
    for step in range(args.steps + 1):
        if step % max(1, args.steps // 6) == 0 or step == args.steps:
            model.eval()
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                loss = sum(model(**b).loss.item() for b in val_batches) / len(val_batches)
            model.train()
            curve.append([step, round(loss, 3)])
        if step == args.steps:
            break
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch(train[rng.integers(0, len(train), 32)], train_masks)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    return {"variant": variant, "d": args.hidden_size, "layers": args.layers, "lr": args.lr, "steps": args.steps,
            "tokens": args.steps * 32 * train.shape[1], "seconds": round(time.time() - start), "curve": curve}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", required=True)
    parser.add_argument("--val-blocks", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--variants", nargs="+", default=["gpt", "bert", "preln", "roformer", "modern", "bert40",
                                                          "bertsin", "bertsin0.2"])
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", default="mlm_plateau.jsonl")
    args = parser.parse_args()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(args.tokenizer)
    train, val = np.load(args.blocks), np.load(args.val_blocks)[:64]
    with open(args.out, "a") as out:
        for variant in args.variants:
            row = run_variant(variant, train, val, tokenizer, args)
            print(json.dumps(row), flush=True)
            out.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
