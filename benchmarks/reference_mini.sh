#!/usr/bin/env bash
# The reference comparison at `mini` (README "Reference run"): all four architectures on the shared corpus, 2.5M
# words each, seed 42, all 3,000 minimal pairs, all validation lines, linear probes on the four fine-tuning tasks
# with both floors (`--finetune-protocol probe`). GPT-BERT trains second so that the two one-stack models finish
# first. A stopped run continues with `compare --resume` (finished models kept, the one in progress from its last
# checkpoint), so the run (about 2.5 h on 2 cores) can be done in parts. At the end
# the report, results, figures and cards are copied to model_cards/reference_mini/.
# WORDS and MODELS change the budget and the architectures, e.g. the one-hour GPT row (README "Reference run"):
#   WORDS=7e6 MODELS=gpt OUT=runs/gpt_mini_1h CARDS=benchmarks/results/gpt_mini_1h benchmarks/reference_mini.sh
# WORDS may give models their own budgets (`compare --word-budget 25e6 hybrid=14.5e6`), e.g. the one-hour reference:
#   WORDS="25e6 hybrid=14.5e6" OUT=runs/reference_mini_1h CARDS=model_cards/reference_mini_1h \
#     benchmarks/reference_mini.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HINDI_MODELS_SHARED_DATA="${HINDI_MODELS_SHARED_DATA:-../shared/data}"
OUT="${OUT:-runs/reference_mini}"
CARDS="${CARDS:-model_cards/reference_mini}"
read -r -a WORDS <<< "${WORDS:-2.5e6}"
read -r -a MODELS <<< "${MODELS:-gpt gpt_bert bert hybrid}"
args=(--corpus shared --preset mini --word-budget "${WORDS[@]}" --max-pairs 0 --max-eval-texts 6000
      --models "${MODELS[@]}" --finetune-protocol probe --output-dir "$OUT" --cards-dir "$CARDS")
if [ -f "$OUT/compare_settings.json" ]; then args+=(--resume); fi
.venv/bin/hindi-lm compare "${args[@]}"
cp "$OUT"/report.md "$OUT"/results.json "$OUT"/loss_curves.png "$OUT"/minimal_pairs.png "$CARDS"/
echo "done"
