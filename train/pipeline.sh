#!/usr/bin/env bash
# One command on the GPU machine: tokenizer -> tiny test model + fixtures -> training -> export -> verify -> eval.
# Usage: bash train/pipeline.sh OUT_DIR [smoke|real]   (run from the repository root)
# Everything is written under OUT_DIR/work; OUT_DIR/results.tar.gz.part* is the packed result
# (unpack: cat results.tar.gz.part* | tar xz).
set -u -o pipefail
OUT=${1:?out dir}; MODE=${2:-real}
W=$OUT/work; mkdir -p "$W"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
START=$(date +%s)
if [ "$MODE" = smoke ]; then BUDGET=${BUDGET:-75}; DEADLINE=$((START + 390)); EVAL_LIMIT="--eval-limit 80";
else BUDGET=${BUDGET:-470}; DEADLINE=$((START + 575)); EVAL_LIMIT=""; fi
left() { echo $((DEADLINE - $(date +%s))); }
stamp() { echo "=== [$(( $(date +%s) - START ))s] $*"; }
pack() {
  stamp pack
  cp "$0" "$W/" 2>/dev/null
  EXCL=""; [ "$MODE" = smoke ] && EXCL="--exclude=default/onnx"
  (cd "$W" && tar czf - $EXCL --exclude=train/pt --exclude=train/pt_ckpt . ) | split -b 15m -d - "${PACK:-$OUT}/results.tar.gz.part"
  ls -la "${PACK:-$OUT}"
}
trap pack EXIT
stamp versions
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import sys, torch, transformers, onnx, onnxruntime, tokenizers, PIL, numpy; print(sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'onnx', onnx.__version__, 'ort', onnxruntime.__version__, 'tokenizers', tokenizers.__version__, 'PIL', PIL.__version__, 'numpy', numpy.__version__)"
nproc
python3 -c "import transformers; print('idefics3 image processor classes:', [n for n in dir(transformers) if 'Idefics3ImageProcessor' in n])"
stamp tokenizer
python3 train/tokenizer.py "$W/tok" || exit 1
stamp fixtures
timeout $(left) python3 train/fixtures.py --tok "$W/tok" --images test/fixtures/images --out "$W/fixtures" || echo "FIXTURES FAILED rc=$?"
stamp train budget=$BUDGET
timeout $(left) python3 train/train.py --tok "$W/tok" --out "$W/train" --budget "$BUDGET" --heldout data/heldout $EVAL_LIMIT || echo "TRAIN FAILED rc=$?"
stamp export
VIMG=$(ls data/heldout/*_ui.png | head -1)
timeout $(left) python3 train/export.py --pt "$W/train/pt" --tok "$W/tok" --out "$W/default" --preset default \
  --verify-image "$VIMG" --verify-question "What is the window title?" || echo "EXPORT FAILED rc=$?"
cp "$W/train/train_log.json" "$W/default/training_log.json" 2>/dev/null
python3 - "$W" <<'PY'
import json, sys, os
w = sys.argv[1]
try:
    log = json.load(open(os.path.join(w, "train", "train_log.json")))
    json.dump({"training_args": log["config"], "params": log["params"], "card": log["card"]},
              open(os.path.join(w, "default", "training_config.json"), "w"), indent=2)
except Exception as e:
    print("no training log:", e)
PY
du -sh "$W"/default "$W"/default/onnx "$W"/fixtures/tiny-model 2>/dev/null
stamp done
