#!/usr/bin/env bash
# On the lent GPU machine: `auto`'s device probe (WebGPU against the CPU) on the default model and on SmolVLM-256M
# look-alikes (torch format; fused with scores, where the fused rule keeps the CPU; fused without scores), each
# checked against a real full-cache decode on both devices (scripts/device/probe-auto.ts). Writes machine.txt,
# probe.jsonl, errors.txt under $1 (the device tool's $OUT). Carry: .gl and .devcarry (build-carry.sh).
set -u
OUTDIR=$1
. "$(dirname "$0")/carry-env.sh"  # ROOT, X (the unpacked carry), N (its node), NODE_PATH
W=${WORK:-/tmp/probe}
IMAGE=$ROOT/media/samples/bars.png
MAXNEW=${MAX_NEW_TOKENS:-24}
mkdir -p "$W"
cd "$ROOT"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; $N --version; nproc; lscpu | grep 'Model name'; date -u; } > "$OUTDIR/machine.txt" 2>&1
t0=$(date +%s)
python3 tools/lookalike/lookalike.py --preset smolvlm-256m --format fused --dtypes fp32 --out "$W/256m-fused" > /dev/null 2>>"$OUTDIR/errors.txt" &
python3 tools/lookalike/lookalike.py --preset smolvlm-256m --format torch --dtypes fp32 --out "$W/256m-torch" --parts decoder_model_merged > /dev/null 2>>"$OUTDIR/errors.txt" &
wait
for f in "$W/256m-fused"/onnx/vision_encoder.onnx "$W/256m-fused"/onnx/embed_tokens.onnx; do ln -sf "$f" "$W/256m-torch/onnx/"; done
echo "generated in $(( $(date +%s) - t0 )) s" >> "$OUTDIR/machine.txt"
run() { # model [no-scores]
  local c; c=$(mktemp -d)
  timeout 240 $N "$X/app/scripts/device/probe-auto.js" "$1" "$c" "$IMAGE" "$MAXNEW" ${2:-} >> "$OUTDIR/probe.jsonl" 2>>"$OUTDIR/errors.txt" \
    || echo "{\"dir\":\"$1\",\"failed\":$?}" >> "$OUTDIR/probe.jsonl"
}
: > "$OUTDIR/probe.jsonl"
run "$ROOT/${DEFAULT_MODEL:-models/default}"
run "$W/256m-torch"
run "$W/256m-fused"
run "$W/256m-fused" no-scores
echo "done in $(( $(date +%s) - t0 )) s" >> "$OUTDIR/machine.txt"
