#!/usr/bin/env bash
# Longer runs of the product path (`hindi-lm pretrain`) per model and allocator, alternating, for what the 10-step
# rows of train_speed.py cannot show: glibc's heap trims, the memory each allocator keeps, kernel time, and over
# several rounds the spread of a step time on a noisy machine (the hybrid's step against GPT's + BERT's).
# Each run: STEPS optimizer steps of a model at PRESET on the first 30,000 lines of the shared corpus, no evaluation
# or saving before the end; one JSON line per run (metrics["speed"], the allocator that ran, peak resident memory
# and kernel seconds from /usr/bin/time) appended to OUT.
#   MODELS=hybrid PRESET=small STEPS=40 ROUNDS=2 OUT=benchmarks/results/allocator_long_small_hybrid.jsonl \
#     benchmarks/allocator_long.sh
#   MODELS="hybrid gpt bert" PRESET=small STEPS=20 ROUNDS=3 ALLOCATORS=mimalloc benchmarks/allocator_long.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
MODELS="${MODELS:-${MODEL:-hybrid}}" PRESET="${PRESET:-small}" STEPS="${STEPS:-40}" ROUNDS="${ROUNDS:-2}"
read -r -a MODELS <<< "$MODELS"
read -r -a ALLOCATORS <<< "${ALLOCATORS:-mimalloc glibc-keep stock}"
OUT="${OUT:-benchmarks/results/allocator_long_${PRESET}_$(IFS=_; echo "${MODELS[*]}").jsonl}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python -c "import sys; from training.data import load_corpus; \
open(sys.argv[1], 'w').write('\n'.join(load_corpus('shared')['train'].select(range(30000))['text']) + '\n')" \
  "$tmp/corpus.txt"
for round in $(seq "$ROUNDS"); do
  for model in "${MODELS[@]}"; do
    for allocator in "${ALLOCATORS[@]}"; do
      run="$tmp/$model-$allocator-$round"
      /usr/bin/time -f '{"max_rss_kb": %M, "kernel_seconds": %S, "user_seconds": %U, "elapsed_seconds": %e}' \
        -o "$run.time" .venv/bin/hindi-lm pretrain --model-type "$model" --preset "$PRESET" \
        --corpus "$tmp/corpus.txt" --output-dir "$run" --max-steps "$STEPS" --eval-steps 100000 --report-to none \
        --seed 0 --allocator "$allocator" > "$run.log" 2>&1
      .venv/bin/python -c "import json, sys; m = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2])); \
print(json.dumps({'model': m['model_type'], 'preset': m['preset'], 'round': int(sys.argv[3]), \
'allocator': m['allocator'], 'steps': m['steps'], 'train_loss': m['train_loss'], 'speed': m['speed'], **t}))" \
        "${run}_checkpoints/metrics.json" "$run.time" "$round" | tee -a "$OUT"
    done
  done
done
