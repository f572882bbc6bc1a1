#!/usr/bin/env bash
# One command on the GPU machine: tokenizer -> tiny test model + fixtures -> training -> export -> verify -> eval.
# Usage: bash train/pipeline.sh OUT_DIR [smoke|real|continue]   (run from the repository root)
#   real     : from scratch (new tokenizer, tiny test model + fixtures, 470 s of training)
#   continue : continue training the committed model (INIT=models/default): rebuild its PyTorch weights from the
#              ONNX files (train/from_onnx.py) and check them against onnxruntime (if that check fails, train
#              from scratch instead and say so in the log), held-out eval before, reading curriculum
#              (train/curriculum.py; run 3's recipe by default: SCHEDULE=read3 = single big words first, then
#              smaller / several words, then family reading questions with the normal mix rising to 65%;
#              SCHEDULE= (empty) falls back to the linear CURRICULUM=0.45,0.15 share of run 2), peak lr 4e-4
#              (LR=...) for the decoder and VLR_MULT=2.5 times that for the vision tower + connector, training-only
#              word-presence loss AUX=0.1 (0 = off), dense token-label loss DENSE=0 (train/dense.py; runs 4-6 used
#              DENSE=0.2 AUX=0 SCHEDULE=dense), SEED=2 (use a new one per run), BUDGET=440 s of training,
#              one process per GPU when there are several (NGPU=... to choose; falls back to one GPU on failure),
#              eval, export, verify, all within DEADLINE_S=565 s. Keeps INIT's tokenizer; no fixtures.
# Everything is written under OUT_DIR/work; OUT_DIR/results.tar.gz.part* is the packed result
# (unpack: cat results.tar.gz.part* | tar xz). With PACK=DIR the parts (and a live train_log.json) go to DIR.
set -u -o pipefail
OUT=${1:?out dir}; MODE=${2:-real}
W=$OUT/work; mkdir -p "$W"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
START=$(date +%s)
if [ "$MODE" = smoke ]; then BUDGET=${BUDGET:-75}; DEADLINE=$((START + 390)); EVAL_LIMIT="--eval-limit 80";
elif [ "$MODE" = continue ]; then BUDGET=${BUDGET:-440}; DEADLINE=$((START + ${DEADLINE_S:-565})); EVAL_LIMIT="";
else BUDGET=${BUDGET:-470}; DEADLINE=$((START + 575)); EVAL_LIMIT=""; fi
INIT=${INIT:-models/default}
left() { echo $((DEADLINE - $(date +%s))); }
stamp() { echo "=== [$(( $(date +%s) - START ))s] $*"; }
pack() {
  stamp pack
  cp "$0" "$W/" 2>/dev/null
  EXCL=""; [ "$MODE" = smoke ] && EXCL="--exclude=default/onnx"
  # keep the PyTorch weights only when no ONNX export came out of the run
  [ -s "$W/default/onnx/decoder_model_merged.onnx" ] || [ ! -d "$W/train/pt" ] || cp -r "$W/train/pt" "$W/pt_unexported"
  (cd "$W" && tar czf - $EXCL --exclude=train/pt --exclude=train/pt_ckpt . ) | split -b 15m -d - "${PACK:-$OUT}/results.tar.gz.part"
  ls -la "${PACK:-$OUT}"
}
trap pack EXIT
stamp versions
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import sys, torch, transformers, onnx, onnxruntime, tokenizers, PIL, numpy; print(sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'onnx', onnx.__version__, 'ort', onnxruntime.__version__, 'tokenizers', tokenizers.__version__, 'PIL', PIL.__version__, 'numpy', numpy.__version__)"
nproc
VIMG=$(ls data/heldout/*_ui.png | head -1)
HREAL=$([ -s data/heldout-real/samples.jsonl ] && echo data/heldout-real)
if [ "$MODE" = continue ]; then
  TOK=$INIT
  SCHED=${SCHEDULE-read3}
  # one process per GPU (torchrun, gradients averaged each step) when the machine has several
  NGPU=${NGPU:-$(nvidia-smi -L | grep -c '^GPU')}; NCPU=$(nproc)
  WORKERS=${WORKERS:-$(( (NCPU - 2) / NGPU ))}; [ "$WORKERS" -gt 15 ] && WORKERS=15; [ "$WORKERS" -lt 2 ] && WORKERS=2
  export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
  train_cont() {  # $1 = number of GPUs; the rest are extra train.py arguments
    local n=$1; shift
    local LAUNCH="python3"; [ "$n" -gt 1 ] && LAUNCH="python3 -m torch.distributed.run --standalone --nproc_per_node=$n"
    timeout $(( $(left) - 30 )) $LAUNCH train/train.py --tok "$TOK" --init-onnx "$INIT" --verify-image "$VIMG" --eval-before \
      --lr "${LR:-4e-4}" --warmup 100 --curriculum "${CURRICULUM:-0.45,0.15}" --words-frac 0.3 --seed "${SEED:-2}" \
      ${SCHED:+--schedule "$SCHED"} --vision-lr-mult "${VLR_MULT:-2.5}" --aux-weight "${AUX:-0.1}" \
      --dense-weight "${DENSE:-0}" --workers "$WORKERS" ${FAMILIES:+--family-weights "$FAMILIES"} \
      --out "$W/train" --budget "$BUDGET" --deadline $((DEADLINE - 45)) --heldout data/heldout \
      ${HREAL:+--heldout-real "$HREAL"} ${PACK:+--progress "$PACK/train_log.json"} "$@"
  }
  stamp "continue from $INIT on $NGPU GPU(s), $WORKERS data workers each: rebuild + verify + eval before, then train budget=$BUDGET"
  train_cont "$NGPU" || echo "TRAIN FAILED rc=$?"
  if [ ! -d "$W/train/pt" ] && [ "$NGPU" -gt 1 ] && [ "$(left)" -gt 240 ]; then  # never waste the call
    stamp "multi-GPU training left no weights: again on one GPU"
    WORKERS=15; train_cont 1 || echo "TRAIN FAILED rc=$?"
  fi
else
python3 -c "import transformers; print('idefics3 image processor classes:', [n for n in dir(transformers) if 'Idefics3ImageProcessor' in n])"
TOK=$W/tok
stamp tokenizer
python3 train/tokenizer.py "$W/tok" || exit 1
stamp fixtures
timeout $(left) python3 train/fixtures.py --tok "$W/tok" --images test/fixtures/images --out "$W/fixtures" || echo "FIXTURES FAILED rc=$?"
stamp train budget=$BUDGET
timeout $(left) python3 train/train.py --tok "$W/tok" --out "$W/train" --budget "$BUDGET" --heldout data/heldout $EVAL_LIMIT || echo "TRAIN FAILED rc=$?"
fi
stamp export
timeout $(left) python3 train/export.py --pt "$W/train/pt" --tok "$TOK" --out "$W/default" --preset default \
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
