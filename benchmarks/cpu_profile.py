"""Where a CPU training step spends its time: torch.profiler op table for GPT, BERT and the hybrid.

    HF_HUB_OFFLINE=1 python benchmarks/cpu_profile.py --out benchmarks/results/cpu_profile.json

The project's path at the `small` preset (sdpa, bf16 autocast where the CPU has it, AdamW), batch `--batch-size`
of full-length random blocks; 2 warm-up steps, then `--steps` profiled steps. Ops are grouped into matmuls
(linear layers and the vocabulary projections), attention (sdpa), softmax/cross-entropy, layer norm,
activations (GELU), embedding lookups and their backward, the optimizer and dtype conversion (bf16 autocast
casts); shares are of the total self CPU time. Then greedy generation of `--new-tokens` tokens with and without
the KV cache (a `small`-shaped GPT with 512 positions): wall time per token against the time inside aten ops.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hindi_models.models import build_model  # noqa: E402
from hindi_models.presets import load_preset  # noqa: E402
from training.pretrain import resolve_precision  # noqa: E402

# aten op → group, by exact name; anything else is "elementwise / other". The optimizer is timed as a whole
# (`record_function("optimizer")`), so its element-wise ops are not counted here.
GROUPS = {
    "matmul": {"aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear", "aten::_addmm_activation"},
    "attention": {"aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::_scaled_dot_product_flash_attention_for_cpu_backward", "aten::_softmax",
                  "aten::_softmax_backward_data"},
    "cross-entropy": {"aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
                      "aten::nll_loss_backward"},
    "layer norm": {"aten::native_layer_norm", "aten::native_layer_norm_backward"},
    "activation": {"aten::gelu", "aten::gelu_backward", "aten::tanh", "aten::tanh_backward", "aten::pow"},
    "embedding": {"aten::embedding_dense_backward", "aten::index_select", "aten::embedding",
                  "aten::_embedding_bag", "aten::index_add_", "aten::index"},
    "copies / casts": {"aten::copy_", "aten::_to_copy", "aten::clone", "aten::contiguous"},
}
GROUP_OF = {op: group for group, ops in GROUPS.items() for op in ops}


def group_of(op_name: str) -> str:
    return GROUP_OF.get(op_name, "elementwise / other")


def ops_inside(prof, range_name: str, device: bool = False) -> dict[str, float]:
    """Self CPU time (us; with `device`, the GPU kernel time it launched) per aten op inside the profiler ranges
    whose name starts with `range_name` (by event interval containment)."""
    events = prof.events()
    ranges = [(e.time_range.start, e.time_range.end) for e in events if e.name.startswith(range_name)]
    inside = defaultdict(float)
    for e in events:
        if e.name.startswith("aten::") and any(a <= e.time_range.start and e.time_range.end <= b for a, b in ranges):
            inside[e.name] += e.self_device_time_total if device else e.self_cpu_time_total
    return dict(inside)


def profile_model(model_type: str, preset_name: str, batch_size: int, steps: int) -> dict:
    """Self CPU time per op group over `steps` training steps."""
    torch.manual_seed(0)
    preset = load_preset(preset_name, model_type=model_type)
    model = build_model(preset, preset.vocab_size).train()
    precision = resolve_precision("auto")
    ids = torch.randint(5, preset.vocab_size, (batch_size, preset.max_length))
    masked = torch.where(torch.rand(ids.shape) < 0.15, ids, -100)
    batch = {"gpt": {"input_ids": ids, "labels": ids}, "bert": {"input_ids": ids, "labels": masked},
             "hybrid": {"input_ids": ids, "labels": ids, "mlm_input_ids": ids, "mlm_labels": masked}}[model_type]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(**batch).loss
        loss.backward()
        with record_function("optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    averages = prof.key_averages()
    optimizer_time = sum(e.cpu_time_total for e in averages if e.key == "optimizer")
    # aten ops outside the optimizer: its ops' self times are inside `optimizer`'s total.
    inside = ops_inside(prof, "optimizer")
    events = [e for e in averages if e.key.startswith("aten::")]
    groups, top = defaultdict(float), []
    groups["optimizer"] = optimizer_time
    for event in events:
        groups[group_of(event.key)] += event.self_cpu_time_total - inside.get(event.key, 0.0)
    total = sum(groups.values())
    for event in sorted(events, key=lambda e: -e.self_cpu_time_total):
        if len(top) < 12:
            top.append({"op": event.key, "share": round(event.self_cpu_time_total / total, 4),
                        "ms_per_step": round(event.self_cpu_time_total / 1000 / steps, 1)})
    return {"model_type": model_type, "preset": preset_name, "batch_size": batch_size, "precision": precision,
            "ms_per_step": round(total / 1000 / steps, 1),
            "groups": {g: round(t / total, 4) for g, t in sorted(groups.items(), key=lambda kv: -kv[1])},
            "group_ms_per_step": {g: round(t / 1000 / steps, 1) for g, t in groups.items()}, "top_ops": top}


def profile_generation(preset_name: str, new_tokens: int) -> dict:
    """Greedy generation with and without the KV cache: wall time per new token against the time spent inside
    aten ops (the rest is Python, `generate`'s bookkeeping and op dispatch)."""
    import time

    torch.manual_seed(0)
    preset = load_preset(preset_name, model_type="gpt", max_length=512)
    model = build_model(preset, preset.vocab_size).eval()
    prompt = torch.randint(5, preset.vocab_size, (1, 9))
    rows = {}
    for use_cache in (True, False):
        kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, use_cache=use_cache,
                      pad_token_id=0)
        with torch.no_grad():
            model.generate(prompt, **{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
            start = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                model.generate(prompt, **kwargs)
            wall = time.perf_counter() - start
        events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
        ops = sum(e.self_cpu_time_total for e in events) / 1e6
        groups = defaultdict(float)
        for event in events:
            groups[group_of(event.key)] += event.self_cpu_time_total / 1e6
        rows["cached" if use_cache else "uncached"] = {
            "wall_ms_per_token": round(1000 * wall / new_tokens, 2), "aten_ms_per_token": round(1000 * ops / new_tokens, 2),
            "outside_aten_share": round(1 - ops / wall, 3),
            "group_ms_per_token": {g: round(1000 * t / new_tokens, 2) for g, t in sorted(groups.items(), key=lambda kv: -kv[1])}}
    return {"preset": preset_name, "new_tokens": new_tokens, "prompt_tokens": 9, **rows,
            "speedup": round(rows["uncached"]["wall_ms_per_token"] / rows["cached"]["wall_ms_per_token"], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="cpu_profile.json")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["gpt", "bert", "hybrid"])
    parser.add_argument("--new-tokens", type=int, default=256, help="generation profile length (0 = skip)")
    args = parser.parse_args()
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(), "runs": []}
    for model_type in args.models:
        results["runs"].append(profile_model(model_type, args.preset, args.batch_size, args.steps))
        run = results["runs"][-1]
        print(model_type, run["ms_per_step"], "ms/step", json.dumps(run["groups"]), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    if args.new_tokens:
        results["generation"] = profile_generation(args.preset, args.new_tokens)
        print("generation", json.dumps(results["generation"]), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
