"""Training speed of the path users run (`hindi-lm pretrain`) against stock set-ups, side by side in one run.

    HF_HUB_OFFLINE=1 python benchmarks/train_speed.py --presets mini --out benchmarks/results/train_speed_mini.json

Per preset and architecture, the same batch × sequence length, corpus lines, tokenizer and packed blocks:
  product        `training.pretrain.pretrain()` (Trainer, the project's collators and defaults) in a fresh process as
                 `hindi-lm pretrain` runs (with mimalloc preloaded, as `hindi-lm` restarts itself; its allocator
                 and heap stay out of this process), timed by its own
                 `StepTimeCallback`: median wall time between optimizer steps after the warm-up steps, evaluation
                 and saving left out (reported on their own); with `--compile` also `--torch-compile`
                 (Trainer's `torch_compile`, inductor; compilation falls in the warm-up), with `--stock-dropout`
                 also with torch's own dropout masks (`hindi-lm pretrain --stock-dropout`), with `--allocators
                 glibc-keep stock` also with those allocators (`hindi-lm pretrain --allocator ...`);
  stock_trainer  stock `Trainer` + stock `DataCollatorForLanguageModeling` over the same blocks and the same stock
                 model class (`run_clm.py` / `run_mlm.py` style), `bf16=True` where the CPU has native bf16, else
                 fp32 (what `--precision auto` picks), timed by the same callback;
  plain_loop     the same model in a plain PyTorch loop (AdamW, clipping, autocast as above): the overhead floor;
  seed_style     one sentence per example padded to the batch's longest, eager attention, fp32, plain loop.
The hybrid has no stock twin: its stock columns are GPT's + BERT's step times. GPT-BERT's stock twin is GPT-2 of
the same shape (its parameters are GPT's).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from hindi_models.architectures import architecture_names, get_architecture  # noqa: E402
from hindi_models.models import make_model_config  # noqa: E402
from hindi_models.presets import load_preset  # noqa: E402
from hindi_models.tokenizer import load_tokenizer, train_tokenizer  # noqa: E402
from training.allocator import ALLOCATORS, mimalloc_environment  # noqa: E402
from training.callbacks import StepTimeCallback  # noqa: E402
from training.data import load_corpus  # noqa: E402
from training.packing import tokenize_and_pack  # noqa: E402
from training.pretrain import resolve_precision  # noqa: E402

STOCK_TWIN = {"gpt": ("gpt",), "bert": ("bert",), "hybrid": ("gpt", "bert"), "gpt_bert": ("gpt",)}


def stock_model(preset, vocab_size: int):
    """The stock twin of a preset's model: its stock class (no pretraining forward) with the activation its config
    class defaults to, as `run_clm.py` / `run_mlm.py` would build it (GPT-2: `gelu_new`; the project's GPT uses the
    same function as one fused kernel, `gelu_pytorch_tanh`)."""
    config = make_model_config(preset, vocab_size)
    default = type(config)()
    for key in ("activation_function", "hidden_act"):
        if hasattr(config, key):
            setattr(config, key, getattr(default, key))
    return get_architecture(preset.model_type).variant(preset.encoder_position_embeddings).model_class(config)


def plain_loop(model, batches, precision: str, warmup: int) -> float:
    """Median seconds per optimizer step of a plain loop (AdamW, clipping 1.0) after `warmup` steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    model.train()
    times = []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def stock_trainer(model, collator, blocks, args, precision: str, steps: int, warmup: int, tokens_per_step: int,
                  scratch: Path) -> dict:
    """Stock Trainer over the blocks; its steady-state speed from the product's own step timer."""
    timer = StepTimeCallback(tokens_per_step, warmup_steps=warmup)
    training_args = TrainingArguments(
        output_dir=str(scratch), max_steps=steps, per_device_train_batch_size=args.batch_size, learning_rate=3e-4,
        weight_decay=0.01, bf16=precision == "bf16", use_cpu=True, save_strategy="no", eval_strategy="no",
        logging_steps=10, report_to=[], disable_tqdm=True, seed=0)
    Trainer(model=model, args=training_args, data_collator=collator, train_dataset=blocks,
            callbacks=[timer]).train()
    return timer.summary()


def in_fresh_process(**settings) -> dict:
    """`pretrain(**settings)` (JSON-able values) in a fresh Python process, as `hindi-lm pretrain` runs: started
    with mimalloc preloaded unless `allocator` says otherwise (`hindi-lm` restarts itself so), and the product's
    allocator and heap never reach the stock set-ups timed in this one."""
    code = ("import json, sys; from training.pretrain import pretrain; "
            "json.dump(pretrain(**json.loads(sys.argv[1])), open(sys.argv[2], 'w'))")
    env = mimalloc_environment() if settings.get("allocator", ALLOCATORS[0]) == "mimalloc" else None
    with tempfile.TemporaryDirectory(prefix="product-") as folder:
        metrics = Path(folder) / "metrics.json"
        subprocess.run([sys.executable, "-c", code, json.dumps(settings), str(metrics)], check=True, cwd=REPO_ROOT,
                       env=env)
        return json.loads(metrics.read_text())


def measure(preset_name: str, model_type: str, corpus_file: Path, tokenizer_dir: Path, blocks, sentences, args,
            scratch: Path) -> dict:
    """The four set-ups for one architecture at one preset."""
    preset = load_preset(preset_name, model_type=model_type)
    tokenizer = load_tokenizer(tokenizer_dir)
    precision = resolve_precision("auto")
    steps = args.warmup + args.steps
    tokens_per_step = args.batch_size * preset.max_length
    row = {"precision": precision, "batch": args.batch_size, "seq": preset.max_length}

    variants = {"product": {}}
    if args.compile:
        variants["product_compiled"] = {"torch_compile": True}
    if args.stock_dropout:
        variants["product_stock_dropout"] = {"stock_dropout": True}
    for allocator in args.allocators:
        variants[f"product_{allocator.replace('-', '_')}"] = {"allocator": allocator}
    for name, settings in variants.items():
        product = in_fresh_process(model_type=model_type, preset=preset_name, corpus=str(corpus_file),
                                   tokenizer_path=str(tokenizer_dir), output_dir=str(scratch / f"{model_type}-{name}"),
                                   max_steps=steps, eval_steps=10 * steps, batch_size=args.batch_size,
                                   report_to="none", disable_tqdm=True, seed=0, overwrite=True, **settings)
        row[name] = {**product["speed"], "loss": product["train_loss"], "allocator": product["allocator"]}

    stock, plain = {}, {}
    for twin in STOCK_TWIN[model_type]:
        twin_preset = load_preset(preset_name, model_type=twin)
        kind = get_architecture(twin).collator
        collator = DataCollatorForLanguageModeling(tokenizer, mlm=kind == "masked", seed=0)
        torch.manual_seed(0)
        stock[twin] = stock_trainer(stock_model(twin_preset, len(tokenizer)), collator, blocks, args, precision,
                                    steps, args.warmup, tokens_per_step, scratch / f"{model_type}-stock-{twin}")
        batches = [collator([blocks[j] for j in range(i * args.batch_size, (i + 1) * args.batch_size)])
                   for i in range(steps)]
        torch.manual_seed(0)
        plain[twin] = plain_loop(stock_model(twin_preset, len(tokenizer)), batches, precision, args.warmup)
    stock_step = sum(s["step_seconds"] for s in stock.values())
    plain_step = sum(plain.values())
    row["stock_trainer"] = {"step_seconds": round(stock_step, 4),
                            "steady_tokens_per_second": round(tokens_per_step / stock_step, 1),
                            "parts": stock}
    row["plain_loop"] = {"step_seconds": round(plain_step, 4),
                         "steady_tokens_per_second": round(tokens_per_step / plain_step, 1)}

    seed_steps, useful = 0.0, []
    for twin in STOCK_TWIN[model_type]:
        kind = get_architecture(twin).collator
        collator = DataCollatorForLanguageModeling(tokenizer, mlm=kind == "masked", seed=0)
        batches = [collator(sentences[i * args.batch_size:(i + 1) * args.batch_size]) for i in range(steps)]
        useful = [int(b["attention_mask"].sum()) for b in batches[args.warmup:]]
        torch.manual_seed(0)
        model = stock_model(load_preset(preset_name, model_type=twin), len(tokenizer))
        model.set_attn_implementation("eager")
        seed_steps += plain_loop(model, batches, "fp32", args.warmup)
    row["seed_style"] = {"step_seconds": round(seed_steps, 4), "useful_tokens_per_step": statistics.mean(useful),
                         "steady_tokens_per_second": round(statistics.mean(useful) / seed_steps, 1)}
    for product in variants:
        tps = row[product]["steady_tokens_per_second"]
        row[f"{product}_over"] = {name: round(tps / row[name]["steady_tokens_per_second"], 3)
                                  for name in ("stock_trainer", "plain_loop", "seed_style")}
    return row


def speed_parser(description: str, steps: int, steps_help: str) -> argparse.ArgumentParser:
    """The options of the product-path benchmarks (this script, `step_profile.py`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--presets", nargs="+", default=["mini"])
    parser.add_argument("--models", nargs="+", default=list(architecture_names()), choices=architecture_names())
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=steps, help=steps_help)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--lines", type=int, default=30_000, help="shared-corpus lines to train on")
    return parser


def main() -> int:
    parser = speed_parser(__doc__.split("\n")[0], 12, "timed steps after the warm-up")
    parser.add_argument("--compile", action="store_true", help="also time the product with --torch-compile")
    parser.add_argument("--stock-dropout", action="store_true", help="also time the product with --stock-dropout")
    parser.add_argument("--allocators", nargs="+", default=[], choices=ALLOCATORS[1:],
                        help="also time the product with these `--allocator`s")
    args = parser.parse_args()
    corpus = load_corpus("shared")
    lines = corpus["train"].select(range(args.lines))["text"]
    results = {"command": " ".join(sys.argv), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
               "torch": torch.__version__, "precision": resolve_precision("auto"), "lines": args.lines,
               "runs": {}}
    if args.out.exists():
        results["runs"] = json.loads(args.out.read_text()).get("runs", {})  # resumable: finished rows stay
    with tempfile.TemporaryDirectory(prefix="train-speed-") as tmp:
        tmp = Path(tmp)
        corpus_file = tmp / "corpus.txt"
        corpus_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for preset_name in args.presets:
            preset = load_preset(preset_name)
            tokenizer_dir = tmp / f"tokenizer-{preset_name}"
            tokenizer = train_tokenizer(lines, vocab_size=preset.vocab_size, output_dir=tokenizer_dir,
                                        show_progress=False)
            packed, _ = tokenize_and_pack(load_corpus(str(corpus_file), validation_fraction=0.01), tokenizer,
                                          block_size=preset.max_length)
            blocks = packed["train"]
            n = args.batch_size * (args.warmup + args.steps)
            sentences = [{"input_ids": ids} for ids in tokenizer(lines[-n:])["input_ids"]]
            for model_type in args.models:
                key = f"{preset_name}/{model_type}"
                if key in results["runs"]:
                    continue
                results["runs"][key] = row = measure(preset_name, model_type, corpus_file, tokenizer_dir, blocks,
                                                     sentences, args, tmp)
                print(key, json.dumps({k: v for k, v in row.items() if k.startswith("product")}), flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
