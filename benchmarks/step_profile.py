"""Where a step of the path users run goes: torch.profiler over Trainer steps of `hindi-lm pretrain`.

    HF_HUB_OFFLINE=1 python benchmarks/step_profile.py --presets mini --out benchmarks/results/step_profile_mini.json

The run is built by `training.pretrain`'s own functions (`start_run`, `prepare_data`, the factory, `build_trainer`),
so the model, collator, Trainer arguments and callbacks are those of `hindi-lm pretrain`; a callback turns the
profiler on after `--warmup` optimizer steps and off `--steps` steps later, so whole steps are recorded: data
loading and collation, forward, backward, clipping, the optimizer and the scheduler. Ops are grouped as
`cpu_profile.py` groups them (matmuls, attention, cross-entropy, layer norm, activation, embedding, copies/casts,
element-wise); the wall time of the profiled steps is reported next to the time inside aten ops (the rest is Python,
Trainer and dispatch). Corpus: the first `--lines` lines of the shared corpus, as in `train_speed.py`.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile
from transformers import TrainerCallback, set_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.cpu_profile import group_of, ops_inside  # noqa: E402
from benchmarks.train_speed import speed_parser  # noqa: E402
from hindi_models.presets import load_preset  # noqa: E402
from training.allocator import ALLOCATORS, relaunch_with_mimalloc, training_allocator  # noqa: E402
from training.data import load_corpus  # noqa: E402
from training.pretrain import (  # noqa: E402
    PretrainSettings, build_trainer, prepare_data, resolve_precision, start_run, training_model)

# Ops whose self time is the optimizer's when they run inside `Optimizer.step` (grouped by the profiler's own
# record_function range of that name).
OPTIMIZER_RANGE = "Optimizer.step#"


class ProfileSteps(TrainerCallback):
    """Profiles optimizer steps `warmup + 1` .. `warmup + steps` of a Trainer run (whole steps, collation included),
    then stops the training. With `device=True` (CUDA) the GPU's kernels are recorded too, and the wall time is
    taken between synchronisations."""

    def __init__(self, warmup: int, steps: int, device: bool = False):
        if warmup < 1 or steps < 1:
            raise ValueError(f"--warmup and --steps must be at least 1, got {warmup} and {steps}")
        self.warmup, self.steps, self.device = warmup, steps, device
        self.profiler, self.started, self.wall = None, 0.0, 0.0

    def _now(self) -> float:
        if self.device:
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.profiler = profile(activities=[ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * self.device)
            self.profiler.start()
            self.started = self._now()
        elif state.global_step == self.warmup + self.steps and self.profiler is not None:
            self.wall = self._now() - self.started
            self.profiler.stop()
            control.should_training_stop = True


def summarize(prof, steps: int, wall: float, device: bool = False) -> dict:
    """Self CPU ms per step by op group (the optimizer's ops in their own group) and the top ops; with `device`,
    the GPU kernel time each aten op launched instead."""
    inside = ops_inside(prof, OPTIMIZER_RANGE, device)
    per_op = {e.key: e.self_device_time_total if device else e.self_cpu_time_total
              for e in prof.key_averages() if e.key.startswith("aten::")}
    groups = defaultdict(float, optimizer=sum(inside.values()))
    for op, time_us in per_op.items():
        groups[group_of(op)] += time_us - inside.get(op, 0.0)
    aten = sum(groups.values())
    top = sorted(per_op.items(), key=lambda kv: -kv[1])[:15]
    ranked = sorted(groups.items(), key=lambda kv: -kv[1])
    return {"wall_ms_per_step": round(1000 * wall / steps, 1),
            ("kernel_ms_per_step" if device else "aten_ms_per_step"): round(aten / 1000 / steps, 1),
            ("gpu_idle_share" if device else "outside_aten_share"): round(1 - aten / 1e6 / wall, 3),
            "group_ms_per_step": {g: round(t / 1000 / steps, 1) for g, t in ranked},
            "group_share": {g: round(t / aten, 3) for g, t in ranked},
            "top_ops": [{"op": k, "ms_per_step": round(v / 1000 / steps, 1)} for k, v in top]}


def profile_product(model_type: str, preset_name: str, corpus_file: Path | None, scratch: Path, args,
                    device: bool = False, tokenizer_path: Path | None = None) -> dict:
    """Profile `args.steps` steady Trainer steps of `hindi-lm pretrain --model-type model_type --preset preset_name`
    (`device`: on the GPU, kernel times; `benchmarks/gpu_product_path.py`; `tokenizer_path`: a trained tokenizer
    instead of training one on the corpus)."""
    settings = PretrainSettings.from_kwargs(
        model_type=model_type, preset=load_preset(preset_name, model_type=model_type),
        corpus=corpus_file and str(corpus_file),
        output_dir=scratch / f"{preset_name}-{model_type}", max_steps=args.warmup + args.steps + 1,
        eval_steps=1000, save_steps=1000, batch_size=args.batch_size, report_to="none", disable_tqdm=True, seed=0,
        overwrite=True, allocator=args.allocator, tokenizer_path=tokenizer_path)
    run = start_run(settings)
    set_seed(settings.seed)
    data = prepare_data(run)
    # SDPA picks its kernel itself unless told (`--sdpa-backend math`: the unfused math path, for comparison)
    forced = sdpa_kernel(getattr(SDPBackend, args.sdpa_backend.upper())) if args.sdpa_backend else nullcontext()
    # the allocator settings (and glibc's heap trim) of pretrain(), entered as it enters them
    with forced, training_allocator(settings.allocator) as run.allocator:
        model = training_model(run, data, verbose=False)
        trainer = build_trainer(run, data, model)
        probe = ProfileSteps(args.warmup, args.steps, device)
        trainer.add_callback(probe)
        trainer.train()
    config = model.config.decoder_config() if hasattr(model.config, "decoder_config") else model.config
    return {"model_type": model_type, "preset": preset_name, "allocator": run.allocator, "batch": args.batch_size,
            "seq": run.preset.max_length, "vocab": len(data.tokenizer), "precision": run.precision,
            "sdpa_backend": args.sdpa_backend or "auto",
            "activation": getattr(config, "activation_function", getattr(config, "hidden_act", None)),
            **summarize(probe.profiler, args.steps, probe.wall, device)}


def main() -> int:
    parser = speed_parser(__doc__.split("\n")[0], 5, "profiled steps after the warm-up")
    parser.add_argument("--sdpa-backend", choices=["math", "flash_attention"], default=None,
                        help="force one SDPA kernel (default: SDPA's own choice)")
    parser.add_argument("--allocator", choices=ALLOCATORS, default=ALLOCATORS[0],
                        help="as `hindi-lm pretrain --allocator` (mimalloc: this script restarts itself with it)")
    args = parser.parse_args()
    relaunch_with_mimalloc(args.allocator)
    lines = load_corpus("shared")["train"].select(range(args.lines))["text"]
    results = {"command": " ".join(sys.argv), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
               "torch": torch.__version__, "precision": resolve_precision("auto"), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="step-profile-") as tmp:
        tmp = Path(tmp)
        corpus_file = tmp / "corpus.txt"
        corpus_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for preset_name in args.presets:
            for model_type in args.models:
                row = profile_product(model_type, preset_name, corpus_file, tmp, args)
                results["runs"][f"{preset_name}/{model_type}"] = row
                print(f"{preset_name}/{model_type}", json.dumps({k: row[k] for k in (
                    "wall_ms_per_step", "aten_ms_per_step", "group_ms_per_step")}), flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
