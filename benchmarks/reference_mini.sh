#!/usr/bin/env bash
# The reference comparison at `mini` (README "Reference run"): all four architectures on the shared corpus, 2.5M
# words each, seed 42, all 3,000 minimal pairs, all validation lines, quick fine-tuning with 3 seeds. A stopped run
# continues with `compare --resume` (finished models kept, the one in progress from its last checkpoint). At the end
# the report, results, figures and cards are copied to model_cards/reference_mini/.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HINDI_MODELS_SHARED_DATA="${HINDI_MODELS_SHARED_DATA:-../shared/data}"
OUT="${OUT:-runs/reference_mini}"
CARDS="${CARDS:-model_cards/reference_mini}"
args=(--corpus shared --preset mini --word-budget 2.5e6 --max-pairs 0 --max-eval-texts 6000
      --finetune-examples 800 --finetune-seeds 0 1 2 --output-dir "$OUT" --cards-dir "$CARDS")
if [ -f "$OUT/compare_settings.json" ]; then args+=(--resume); fi
.venv/bin/hindi-lm compare "${args[@]}"
cp "$OUT"/report.md "$OUT"/results.json "$OUT"/loss_curves.png "$OUT"/minimal_pairs.png "$CARDS"/
echo "done"
