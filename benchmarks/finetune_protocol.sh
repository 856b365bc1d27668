#!/usr/bin/env bash
# The fine-tuning protocol (`hindi-lm finetune`, issue 17) on the reference models of benchmarks/reference_mini.sh:
# one JSON per model and task in benchmarks/results/finetune_protocol/, each written when it finishes, so a stopped
# run continues where it stopped. MODELS / TASKS / EXTRA (more `hindi-lm finetune` options) narrow or change it.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HINDI_MODELS_SHARED_DATA="${HINDI_MODELS_SHARED_DATA:-../shared/data}"
RUN="${RUN:-runs/reference_mini}"
OUT="${OUT:-benchmarks/results/finetune_protocol}"
mkdir -p "$OUT"
for task in ${TASKS:-pos iitp_sentiment bbc_topic ner}; do
  for model in ${MODELS:-gpt bert hybrid gpt_bert}; do
    result="$OUT/$model.$task.json"
    if [ -f "$result" ]; then continue; fi
    # shellcheck disable=SC2086
    .venv/bin/hindi-lm finetune --model "$RUN/$model" --tasks "$task" ${EXTRA:-} --output "$result.partial" \
        > /dev/null 2> "$OUT/$model.$task.log"
    mv "$result.partial" "$result"
  done
done
echo "done"
