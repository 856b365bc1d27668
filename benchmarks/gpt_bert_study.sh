#!/usr/bin/env bash
# GPT-BERT against the other three at `mini` (issue 15), then its causal fraction at 1/16, 1/4, 1/2 (1/8, the
# default when it ran, is the compare run's row), all on the shared corpus with one tokenizer, one seed and one word budget.
# Resumable by parts: a finished run folder is skipped. Results: runs/gpt_bert_study/, copied to
# benchmarks/results/gpt_bert_study/ by the last step.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HINDI_MODELS_SHARED_DATA="${HINDI_MODELS_SHARED_DATA:-../shared/data}"
BUDGET="${BUDGET:-1e6}"
OUT="${OUT:-runs/gpt_bert_study}"
LM=.venv/bin/hindi-lm
mkdir -p "$OUT" benchmarks/results/gpt_bert_study

if [ ! -f "$OUT/compare/results.json" ]; then
  resume=(); if [ -f "$OUT/compare/compare_settings.json" ]; then resume=(--resume); fi
  $LM compare --corpus shared --preset mini --word-budget "$BUDGET" --max-pairs 0 --max-eval-texts 6000 \
      --finetune-examples 800 --finetune-seeds 0 --causal-fraction 0.125 --output-dir "$OUT/compare" "${resume[@]}"
fi
cp "$OUT/compare/results.json" "$OUT/compare/report.md" benchmarks/results/gpt_bert_study/

for fraction in 0.0625 0.25 0.5; do
  dir="$OUT/causal_fraction_$fraction"
  if [ ! -f "$dir/pos.json" ]; then
    rm -rf "$dir" "${dir}_checkpoints"
    $LM pretrain --model-type gpt_bert --preset mini --corpus shared --word-budget "$BUDGET" \
        --tokenizer "$OUT/compare/tokenizer" --causal-fraction "$fraction" --output-dir "$dir" > "$dir.pretrain.log"
    $LM evaluate --model "$dir" --max-texts 0 --max-pairs 0 --output "$dir/evaluation.json" --quiet
    $LM finetune --model "$dir" --tasks pos --seeds 0 --epochs 1 --max-train-examples 800 \
        --max-eval-examples 800 --output "$dir/pos.json"
  fi
  cp "$dir.pretrain.log" "benchmarks/results/gpt_bert_study/causal_fraction_$fraction.pretrain.log"
  cp "$dir/evaluation.json" "benchmarks/results/gpt_bert_study/causal_fraction_$fraction.evaluation.json"
  cp "$dir/pos.json" "benchmarks/results/gpt_bert_study/causal_fraction_$fraction.pos.json"
done
echo "done"
