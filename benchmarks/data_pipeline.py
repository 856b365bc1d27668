"""Benchmark: train tokenizers on the shared Hindi corpus, then tokenize + pack it.

    HF_HUB_OFFLINE=1 python benchmarks/data_pipeline.py                     # shared corpus, vocab 8k/16k/32k
    python benchmarks/data_pipeline.py --train my.txt --validation val.txt --vocab-sizes 16000

Reports, per vocab size: tokenizer training time (not part of chars/s), held-out chars/token, and the
tokenize + pack time, chars/second and tokens for train + validation. tokenize + pack writes into a fresh
temporary cache, so the figure is a cold run; the cached re-run is timed too. Load + clean is timed
separately (it is cached by `datasets` after the first run ever).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import datasets
import tokenizers
import torch
import transformers

from hindi_models.tokenizer import tokenizer_fertility, train_tokenizer
from training.data import load_corpus, shared_corpus_files
from training.packing import tokenize_and_pack


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared-dir", default=None, help="shared data folder (default $HINDI_MODELS_SHARED_DATA)")
    parser.add_argument("--train", default=None, help="train text file(s)/glob (default: shared train.txt)")
    parser.add_argument("--validation", default=None, help="validation file (default: shared validation.txt)")
    parser.add_argument("--vocab-sizes", type=int, nargs="+", default=[8000, 16000, 32000])
    parser.add_argument("--block-size", type=int, default=512)
    parser.add_argument("--num-proc", type=int, default=None, help="datasets.map processes (default: 1)")
    parser.add_argument("--json", default=None, help="also write the results here")
    return parser.parse_args(argv)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def cpu_timed(fn, *args, **kwargs):
    """Wall and CPU seconds (all threads of this process: the Rust encoder runs on a thread pool).

    On a shared machine the wall time depends on the other jobs; the CPU time much less so.
    """
    cpu = time.process_time()
    out, wall = timed(fn, *args, **kwargs)
    return out, wall, time.process_time() - cpu


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    datasets.disable_progress_bars()
    if args.train is None:
        shared = shared_corpus_files(args.shared_dir)
        args.train, args.validation = str(shared["train"]), args.validation or str(shared["validation"])
    print(f"machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()}, {platform.platform()}")
    print(f"versions: python {platform.python_version()}, torch {torch.__version__}, transformers "
          f"{transformers.__version__}, tokenizers {tokenizers.__version__}, datasets {datasets.__version__}")

    corpus, load_s = timed(load_corpus, args.train, validation_sources=args.validation)
    n_lines = {k: len(v) for k, v in corpus.items()}
    print(f"load + clean: {load_s:.1f}s ({n_lines})")

    results = []
    for vocab_size in args.vocab_sizes:
        tok, train_s = timed(train_tokenizer, corpus["train"], vocab_size=vocab_size, show_progress=False)
        held_out = tokenizer_fertility(tok, corpus["validation"])
        with tempfile.TemporaryDirectory() as cache:
            (packed, stats), pack_s, pack_cpu_s = cpu_timed(
                tokenize_and_pack, corpus, tok, args.block_size, num_proc=args.num_proc, cache_dir=cache
            )
            _, cached_s = timed(tokenize_and_pack, corpus, tok, args.block_size, num_proc=args.num_proc, cache_dir=cache)
        n_chars = sum(s["n_chars"] for s in stats.values())
        n_tokens = sum(s["n_tokens"] for s in stats.values())
        row = {
            "vocab_size": len(tok),
            "tokenizer_train_s": round(train_s, 1),
            "heldout_chars_per_token": round(held_out["chars_per_token"], 3),
            "heldout_tokens_per_word": round(held_out["tokens_per_word"], 3),
            "train_chars_per_token": round(stats["train"]["n_chars"] / stats["train"]["n_tokens"], 3),
            "pack_s": round(pack_s, 1),
            "pack_cached_s": round(cached_s, 2),
            "chars_per_s": round(n_chars / pack_s),
            "pack_cpu_s": round(pack_cpu_s, 1),
            "chars_per_cpu_s": round(n_chars / pack_cpu_s),
            "load_average": [round(x, 1) for x in os.getloadavg()],
            "n_chars": n_chars,
            "n_tokens": n_tokens,
            "n_blocks": {k: s["n_blocks"] for k, s in stats.items()},
            "block_size": args.block_size,
        }
        results.append(row)
        print(json.dumps(row), flush=True)

    print("\n| vocab | tokenizer train (s) | held-out chars/token | train chars/token (incl. [CLS]/[SEP]) "
          "| tokenize+pack wall (s) | chars/s | CPU (s) | chars/CPU-s | tokens | blocks (train/val) "
          "| cached re-run (s) | load avg (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['vocab_size']} | {r['tokenizer_train_s']} | {r['heldout_chars_per_token']} | "
              f"{r['train_chars_per_token']} | {r['pack_s']} | {r['chars_per_s'] / 1e6:.2f} M | {r['pack_cpu_s']} | "
              f"{r['chars_per_cpu_s'] / 1e6:.2f} M | {r['n_tokens']:,} | {r['n_blocks']['train']:,} / "
              f"{r['n_blocks']['validation']:,} | {r['pack_cached_s']} | {r['load_average'][0]} |")
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_clean_s": load_s, "lines": n_lines, "results": results}, f, indent=2)
    return results


if __name__ == "__main__":
    main()
