#!/usr/bin/env bash
# Retrace models/default on a GPU machine: run 1 from scratch, then runs 2-9, each continuing from the folder the
# previous run exported (INIT=...), with the settings each run used (models/default/README.md, "Training").
# usage: bash train/reproduce.sh OUT_DIR [FIRST_RUN]   (from the repository root; DRY=1 prints the commands only)
# The final model is OUT_DIR/run9/work/default. Budgets are wall-clock seconds, so step counts differ from the
# committed model's; runs 4-6 used 4 GPUs (one process per GPU, 128 sequences each): with fewer GPUs each step sees
# fewer sequences. About 70 minutes on 1 + 4 + 1 GPUs; one stage is one train/pipeline.sh call.
set -euo pipefail
OUT=${1:?out dir}; FIRST=${2:-1}
cd "$(dirname "$0")/.."
stage() {  # stage N MODE VAR=VALUE...
  local n=$1 mode=$2; shift 2
  local init=()
  [ "$n" -gt 1 ] && init=(INIT="$OUT/run$((n - 1))/work/default")
  echo "=== run $n: ${init[*]} $* bash train/pipeline.sh $OUT/run$n $mode"
  [ "${DRY:-0}" = 1 ] && return 0
  [ "$n" -lt "$FIRST" ] && return 0
  env "${init[@]}" "$@" bash train/pipeline.sh "$OUT/run$n" "$mode"
  [ -s "$OUT/run$n/work/default/onnx/decoder_model_merged.onnx" ] || { echo "run $n exported no model"; exit 1; }
}
stage 1 real
stage 2 continue SEED=1 SCHEDULE= CURRICULUM=0.45,0.15 LR=5e-4 VLR_MULT=1 AUX=0 BUDGET=290 DEADLINE_S=400
stage 3 continue SEED=2 SCHEDULE=read3 LR=4e-4 VLR_MULT=2.5 AUX=0.1 BUDGET=480 DEADLINE_S=585
stage 4 continue SEED=3 SCHEDULE=dense AUX=0 DENSE=0.2 LR=5e-4 BUDGET=470 DEADLINE_S=585
stage 5 continue SEED=4 SCHEDULE=dense AUX=0 DENSE=0.2 LR=4e-4 FAMILIES=shapes=0.3,bars=0.4,ui=0.1,flow=0.2 BUDGET=470 DEADLINE_S=585
stage 6 continue SEED=5 SCHEDULE=dense AUX=0 DENSE=0.2 LR=3e-4 FAMILIES=shapes=0.2,bars=0.55,ui=0.1,flow=0.15 BUDGET=350 DEADLINE_S=450
# runs 7-9 (issue 16): one GPU each, scenes drawn the way real tools draw them (train/styles.py). Run 7 used
# styles.py as of commit ae6b270 (no tight crops or backdrops yet); runs 8-9 the styles of d93e911 onward.
stage 7 continue SEED=7 SCHEDULE=real AUX=0 DENSE=0.2 LR=5e-4 VLR_MULT=2.5 FAMILIES=shapes=0.2,bars=0.35,ui=0.25,flow=0.2 WORKERS=15 BUDGET=440 DEADLINE_S=570
stage 8 continue SEED=8 SCHEDULE=real AUX=0 DENSE=0.2 LR=3.5e-4 VLR_MULT=2.5 FAMILIES=shapes=0.15,bars=0.35,ui=0.3,flow=0.2 WORKERS=15 BUDGET=440 DEADLINE_S=570
stage 9 continue SEED=9 SCHEDULE=real AUX=0 DENSE=0.2 LR=2.5e-4 VLR_MULT=2.5 FAMILIES=shapes=0.1,bars=0.35,ui=0.2,flow=0.35 WORKERS=15 BUDGET=320 DEADLINE_S=430
echo "model: $OUT/run9/work/default (copy it over models/default/ and keep the logs, see the model card)"
