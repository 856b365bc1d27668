"""Learning-rate / warmup sweep: does each architecture learn at a small budget? (GPU or CPU)

    python benchmarks/lr_sweep.py --blocks train_blocks.npy --val-blocks val_blocks.npy --tokenizer tok \
        --preset mini --steps 2500 --configs bert:1e-3:0.02 bert:3e-4:0.1 hybrid:5e-4:0.1 --out sweep.json

Blocks are packed token ids (`tokenize_and_pack` output saved with numpy), so the sweep needs no `datasets`.
Each config is `model_type:learning_rate:warmup_ratio[:encoder_position_embeddings]`; training uses the project's models, collators and
`Trainer` settings (AdamW 0.9/0.95, weight decay 0.01, clipping 1.0, cosine decay, bf16 where supported) with
batch 32, and records the validation loss per objective every `--eval-every` steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hindi_models.models import build_model  # noqa: E402
from hindi_models.presets import load_preset  # noqa: E402
from hindi_models.tokenizer import load_tokenizer  # noqa: E402
from training.collators import make_collator  # noqa: E402
from training.pretrain import resolve_precision, validation_losses  # noqa: E402


class Blocks(torch.utils.data.Dataset):
    def __init__(self, array):
        self.array = array

    def __len__(self):
        return len(self.array)

    def __getitem__(self, i):
        return {"input_ids": self.array[i].astype(np.int64).tolist()}


class Curve(TrainerCallback):
    """Validation losses per objective (same masks for every model) every `every` steps."""

    def __init__(self, val, collator, every, record):
        self.val, self.collator, self.every, self.record = val, collator, every, record

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self.record.append({"step": state.global_step, **validation_losses(model, self.val, self.collator, 64)})


def run_config(spec, train, val, tokenizer, preset_name, steps, batch_size, every, out_dir):
    model_type, lr, warmup, *positions = spec.split(":")  # optional 4th field: absolute | rotary
    preset = load_preset(preset_name, model_type=model_type, encoder_position_embeddings=(positions or [None])[0])
    torch.manual_seed(0)
    model = build_model(preset, len(tokenizer))
    collator = make_collator(model_type, tokenizer, seed=0)
    record: list[dict] = []
    precision = resolve_precision("auto")
    args = TrainingArguments(
        output_dir=str(out_dir / spec.replace(":", "_")), max_steps=steps, per_device_train_batch_size=batch_size,
        learning_rate=float(lr), warmup_steps=float(warmup), weight_decay=0.01, lr_scheduler_type="cosine",
        adam_beta1=0.9, adam_beta2=0.95, max_grad_norm=1.0, bf16=precision == "bf16", save_strategy="no",
        report_to=[], logging_steps=every, disable_tqdm=True, remove_unused_columns=False, seed=0,
        dataloader_num_workers=2 if torch.cuda.is_available() else 0, use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(model=model, args=args, data_collator=collator, train_dataset=train,
                      callbacks=[Curve(val, collator, every, record)])
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    return {"config": spec, "model_type": model_type, "learning_rate": float(lr), "warmup_ratio": float(warmup),
            "steps": steps, "tokens": steps * batch_size * len(train[0]["input_ids"]), "seconds": round(seconds, 1),
            "precision": precision, "curve": record}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", required=True)
    parser.add_argument("--val-blocks", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--max-val-blocks", type=int, default=256)
    parser.add_argument("--configs", nargs="+", required=True)
    parser.add_argument("--out", default="sweep.json")
    args = parser.parse_args()
    tokenizer = load_tokenizer(args.tokenizer)
    train = Blocks(np.load(args.blocks))
    val = Blocks(np.load(args.val_blocks)[: args.max_val_blocks])
    out = Path(args.out)
    results = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
               "torch": torch.__version__, "preset": args.preset, "batch_size": args.batch_size, "runs": []}
    for spec in args.configs:
        row = run_config(spec, train, val, tokenizer, args.preset, args.steps, args.batch_size, args.eval_every,
                         out.parent)
        results["runs"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "curve"}), json.dumps(row["curve"][-1]), flush=True)
        out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
