"""CPU training throughput of the three architectures against stock set-ups, the hybrid's step cost, KV cache.

    HF_HUB_OFFLINE=1 python benchmarks/cpu_throughput.py --out cpu_results.json

At the `small` preset (d 512, 6 layers, 8 heads, seq 256, vocab 16000), on the shared corpus' sentences:
  (a) seed style: stock model, eager attention, fp32, one sentence per example, padded to the batch's longest;
  (b) HF examples style: stock model, sdpa, packed 256-token blocks, fp32;
  (c) this project's path: sdpa, packed blocks, the project's collators, `--precision auto` (bf16 autocast on
      CPUs with AVX512-BF16/AMX).
Reported: useful (non-padding) tokens per second, median of `--steps` timed steps after 2 warm-up steps; the
hybrid's step time against GPT's + BERT's; greedy generation of 256 tokens with and without the KV cache.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hindi_models.models import build_model  # noqa: E402
from hindi_models.presets import load_preset  # noqa: E402
from hindi_models.tokenizer import train_tokenizer  # noqa: E402
from training.collators import make_collator  # noqa: E402
from training.data import load_corpus  # noqa: E402
from training.packing import tokenize_and_pack  # noqa: E402
from training.pretrain import resolve_precision  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_throughput import flops_per_token  # noqa: E402  (one FLOP count for CPU and GPU)

# Measured dense matmul peaks of this machine's 2 cores (GFLOP/s): fp32, and bf16 through AMX/AVX512-BF16.
PEAK_GFLOPS = {"fp32": 344.0, "bf16": 2165.0}


def mfu(model_type: str, preset, vocab: int, tokens_per_s: float, precision: str, seq: int | None = None) -> float:
    """Model FLOPs utilisation: 6·N_non-embedding + attention + vocabulary projection, against the dtype's peak."""
    shape = preset if seq is None else preset.with_overrides(max_length=seq)
    return tokens_per_s * flops_per_token(model_type, shape, vocab) / (PEAK_GFLOPS[precision] * 1e9)


def time_steps(model, batches, precision, steps):
    """Median seconds per optimizer step and useful tokens per step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    times = []
    for i, batch in enumerate(batches[: steps + 2]):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= 2:
            times.append(time.perf_counter() - start)
    useful = statistics.mean(int(b["attention_mask"].sum()) for b in batches[2: steps + 2])
    return statistics.median(times), useful, (min(times), max(times))


def compare_compile(args, tokenizer, block_examples, precision, results, out) -> int:
    """Setup (c) eager against `torch.compile` (default inductor; the first steps, which compile, are excluded)."""
    n = args.steps + 2
    for model_type in args.compile_only or ("gpt", "bert", "hybrid"):
        collator = make_collator(model_type, tokenizer, seed=0)
        batches = [collator(block_examples[i * args.batch_size:(i + 1) * args.batch_size]) for i in range(n)]
        for compiled in (False, True):
            torch.manual_seed(0)
            model = build_model(load_preset(args.preset, model_type=model_type), len(tokenizer))
            start = time.perf_counter()
            if compiled:
                model = torch.compile(model)
            seconds, useful, spread = time_steps(model, batches, precision, args.steps)
            row = {"step_s": round(seconds, 3), "spread_s": [round(s, 3) for s in spread],
                   "tokens_per_s": round(useful / seconds, 1), "total_s": round(time.perf_counter() - start, 1)}
            results["setups"][f"{model_type}/c{'+compile' if compiled else ''}"] = row
            print(model_type, "compiled" if compiled else "eager", json.dumps(row), flush=True)
            out.write_text(json.dumps(results, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="cpu_results.json")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--compile-only", nargs="*", metavar="MODEL",
                        help="only time setup (c) eager and with torch.compile for these models (e.g. gpt bert hybrid)")
    args = parser.parse_args()
    torch.manual_seed(0)
    corpus = load_corpus("shared")
    lines = corpus["train"].select(range(60_000))["text"]
    tokenizer = train_tokenizer(lines, vocab_size=load_preset(args.preset).vocab_size, show_progress=False)
    preset = load_preset(args.preset)
    packed, _ = tokenize_and_pack(corpus["validation"], tokenizer, block_size=preset.max_length)
    sentences = tokenizer(corpus["validation"]["text"][: args.batch_size * (args.steps + 2)])["input_ids"]
    n = args.steps + 2
    block_examples = [{"input_ids": packed[i]["input_ids"]} for i in range(args.batch_size * n)]
    sentence_examples = [{"input_ids": ids} for ids in sentences]
    precision = resolve_precision("auto")
    results = {"preset": args.preset, "batch_size": args.batch_size, "precision_c": precision,
               "torch": torch.__version__, "threads": torch.get_num_threads(), "setups": {}}
    out = Path(args.out)
    if args.compile_only is not None:
        return compare_compile(args, tokenizer, block_examples, precision, results, out)
    step_time = {}
    for model_type in ("gpt", "bert", "hybrid"):
        collator = make_collator(model_type, tokenizer, seed=0)
        chunks = lambda ex: [collator(ex[i * args.batch_size:(i + 1) * args.batch_size]) for i in range(n)]  # noqa: E731
        for setup, examples, attn, prec in (("a", sentence_examples, "eager", "fp32"),
                                            ("b", block_examples, "sdpa", "fp32"),
                                            ("c", block_examples, "sdpa", precision)):
            model = build_model(load_preset(args.preset, model_type=model_type), len(tokenizer))
            model.set_attn_implementation(attn)
            seconds, useful, spread = time_steps(model, chunks(examples), prec, args.steps)
            row = {"useful_tokens_per_step": useful, "step_s": round(seconds, 3),
                   "spread_s": [round(s, 3) for s in spread], "tokens_per_s": round(useful / seconds, 1)}
            # (a)'s sequences are single sentences: attention over their mean length, not the block's.
            seq = round(useful / args.batch_size) if setup == "a" else None
            row["mfu"] = round(mfu(model_type, preset, len(tokenizer), row["tokens_per_s"], prec, seq), 4)
            results["setups"][f"{model_type}/{setup}"] = row
            step_time[(model_type, setup)] = seconds
            print(model_type, setup, json.dumps(row), flush=True)
            out.write_text(json.dumps(results, indent=2))
    for model_type in ("gpt", "bert", "hybrid"):
        a, b, c = (results["setups"][f"{model_type}/{s}"]["tokens_per_s"] for s in "abc")
        results[f"{model_type}_c_over_a"], results[f"{model_type}_c_over_b"] = round(c / a, 2), round(c / b, 2)
    results["hybrid_step_over_gpt_plus_bert"] = round(
        step_time[("hybrid", "c")] / (step_time[("gpt", "c")] + step_time[("bert", "c")]), 3)

    # 256 new tokens after the prompt need more positions than `small` has; the cost per token is the same.
    model = build_model(load_preset(args.preset, model_type="gpt", max_length=512), len(tokenizer)).eval()
    prompt = torch.tensor([[tokenizer.cls_token_id] + sentences[0][1:9]])
    timings = {}
    for use_cache in (True, False):
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(prompt, max_new_tokens=256, min_new_tokens=256, do_sample=False, use_cache=use_cache,
                           pad_token_id=tokenizer.pad_token_id)
        timings[use_cache] = time.perf_counter() - start
    results["generate_256"] = {"cached_s": round(timings[True], 2), "uncached_s": round(timings[False], 2),
                               "speedup": round(timings[False] / timings[True], 2)}
    print(json.dumps({k: v for k, v in results.items() if k != "setups"}, indent=2))
    out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
