"""GPU speed and MFU of the path users run: `pretrain()` (what `hindi-lm pretrain` runs), with a profile of a step.

    python benchmarks/gpu_product_path.py --corpus .gpu_corpus/corpus.txt --out $OUT/gpu_product_path.json
    python benchmarks/gpu_product_path.py --dry-run --out /tmp/gpu_dry.json   # CPU, tiny preset: checks the script

Per model (`--models`, default gpt and hybrid) at `--preset` (default base: d 768, 12 layers, 512 positions) and
batch `--batch-size` (default 32), bf16: `pretrain()` for `--steps` optimizer steps, eager and (unless
`--no-compile`) with `--torch-compile` (Trainer's inductor option); speed is the run's own `metrics["speed"]`
(StepTimeCallback: warm-up, evaluation and saving left out), here its MEAN steady step, since CUDA runs
asynchronously and single intervals between optimizer steps are not synchronised. MFU = FLOPs per token as
`gpu_throughput.py` counts them (the hand-loop numbers it is compared with: both of the hybrid's heads over every
position) × tokens/s / the card's dense bf16 peak. Then `--profile-steps` eager steps under torch.profiler
(`step_profile.py`'s callback and op groups): GPU kernel time per op group, the top ops, and the share of the wall
time the GPU idled. The tokenizer is trained once on the corpus (at most the preset's vocabulary) and shared.

The device machine has no shared data folder: write a slice of the shared corpus into an ignored folder first and
carry it (60,000 lines below; with the bundled sample alone the vocabulary stays far below the preset's 32,000):
    mkdir -p .gpu_corpus && .venv/bin/python -c "from training.data import load_corpus; \
open('.gpu_corpus/corpus.txt', 'w').write('\\n'.join(load_corpus('shared')['train'].select(range(60000))['text']))"
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.gpu_throughput import PEAK_BF16, flops_per_token  # noqa: E402
from benchmarks.step_profile import profile_product  # noqa: E402
from hindi_models.architectures import architecture_names  # noqa: E402
from hindi_models.presets import load_preset  # noqa: E402
from hindi_models.tokenizer import train_tokenizer  # noqa: E402
from training.data import load_corpus  # noqa: E402
from training.pretrain import pretrain  # noqa: E402


def peak_flops() -> float | None:
    """The dense bf16 peak of this CUDA device (by name), or None off CUDA or for an unknown card."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((peak for card, peak in PEAK_BF16.items() if card in name), None)


def time_product(model_type: str, args, corpus: Path, tokenizer_dir: Path, scratch: Path, compiled: bool) -> dict:
    """`args.steps` steps of `pretrain()`; its speed record, tokens/s from the mean steady step, and MFU."""
    metrics = pretrain(model_type=model_type, preset=args.preset, corpus=corpus and str(corpus),
                       tokenizer_path=tokenizer_dir,
                       output_dir=scratch / f"{model_type}-{'compiled' if compiled else 'eager'}",
                       max_steps=args.steps, eval_steps=10**6, save_steps=10**6, batch_size=args.batch_size,
                       report_to="none", disable_tqdm=True, seed=0, torch_compile=compiled, overwrite=True,
                       precision=args.precision)
    speed = metrics["speed"]
    tokens_per_step = speed["steady_tokens_per_second"] * speed["step_seconds"]  # from the median step
    tokens_per_second = tokens_per_step / speed["mean_step_seconds"]
    row = {"compiled": compiled, "precision": metrics["precision"], "speed": speed,
           "tokens_per_second_mean_step": round(tokens_per_second), "train_loss": metrics["train_loss"]}
    peak = peak_flops()
    if peak is not None:
        preset = load_preset(args.preset, model_type=model_type)
        row["mfu"] = round(flops_per_token(model_type, preset, args.vocab) * tokens_per_second / peak, 4)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=["gpt", "hybrid"], choices=architecture_names())
    parser.add_argument("--preset", default="base")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per timed run (3 are warm-up)")
    parser.add_argument("--profile-steps", type=int, default=3, help="profiled eager steps after 3 warm-up steps")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the --torch-compile runs")
    parser.add_argument("--corpus", type=Path, help="text file to train on (default: the bundled sample)")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the script without a GPU: tiny preset, 6 steps, fp32/bf16 as the CPU allows")
    args = parser.parse_args()
    if args.dry_run:
        args.preset, args.steps, args.profile_steps, args.compile, args.precision = "tiny", 6, 2, False, "auto"
    elif not torch.cuda.is_available():
        parser.error("no CUDA device (use --dry-run to check the script on CPU)")
    results = {"command": " ".join(sys.argv), "machine": platform.machine(), "torch": torch.__version__,
               "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
               "peak_bf16_flops": peak_flops(), "preset": args.preset, "batch_size": args.batch_size, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-product-") as tmp:
        scratch = Path(tmp)
        corpus = args.corpus  # None: the bundled sample
        lines = corpus.read_text(encoding="utf-8").splitlines() if corpus else load_corpus(None)["train"]["text"]
        tokenizer = train_tokenizer(lines, vocab_size=load_preset(args.preset).vocab_size,
                                    output_dir=scratch / "tokenizer", show_progress=False)
        args.vocab = len(tokenizer)
        results["vocab"], results["corpus_lines"] = args.vocab, len(lines)
        for model_type in args.models:
            row = {"eager": time_product(model_type, args, corpus, scratch / "tokenizer", scratch, False)}
            if args.compile:
                row["compiled"] = time_product(model_type, args, corpus, scratch / "tokenizer", scratch, True)
            probe = argparse.Namespace(warmup=3, steps=args.profile_steps, batch_size=args.batch_size,
                                       allocator="stock", sdpa_backend=None)
            row["profile"] = profile_product(model_type, args.preset, corpus, scratch, probe,
                                             device=torch.cuda.is_available(), tokenizer_path=scratch / "tokenizer")
            results["runs"][model_type] = row
            print(model_type, json.dumps({k: {m: v.get(m) for m in ("tokens_per_second_mean_step", "mfu")}
                                          for k, v in row.items() if k != "profile"}), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
