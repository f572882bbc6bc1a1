#!/usr/bin/env bash
# On the lent GPU machine: full-size SmolVLM-256M and -500M look-alikes (tools/lookalike), fused in every dtype and
# the torch-format twin in fp32; every policy on CPU and WebGPU; parity of both formats against PyTorch.
# Writes under $1 (the device tool's $OUT), at most 6 files: machine.txt, generate.json, table.jsonl, parity.json,
# errors.txt, status.txt. Stops starting new cells at DEADLINE_S (default 450 s) so the run stays under 8 minutes.
# Carry: .gl and .devcarry (bash scripts/device/build-carry.sh, which bundles scripts/device/lookalike-ask.ts too).
set -u
OUTDIR=$1
. "$(dirname "$0")/carry-env.sh"  # ROOT, X (the unpacked carry), N (its node), NODE_PATH
START=$(date +%s)
DEADLINE_S=${DEADLINE_S:-450}
MAXNEW=${MAX_NEW_TOKENS:-24}
IMAGE=$ROOT/media/samples/bars.png
W=${WORK:-/tmp/lookalike}
PY=${PY:-python3}
LAYERS=${LAYERS:-}   # for a reduced-depth local trial only
mkdir -p "$W"
cd "$ROOT"
left() { echo $(( DEADLINE_S - ($(date +%s) - START) )); }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; $N --version; python3 -c 'import onnx, onnxruntime, torch, transformers; print("onnx", onnx.__version__, "ort", onnxruntime.__version__, "torch", torch.__version__, "transformers", transformers.__version__)'; nproc; date -u; git -C "$ROOT" log -1 --format=%H 2>/dev/null || true; } > "$OUTDIR/machine.txt" 2>&1

# ---- generate (in parallel: one process per preset x dtype; the torch twin writes only its decoder) ----
gen() { # preset format dtype out [parts]
  local t0=$(date +%s)
  $PY tools/lookalike/lookalike.py ${LAYERS:+--layers $LAYERS} --preset "$1" --format "$2" --dtypes "$3" --out "$4" ${5:+--parts $5} > /dev/null 2>>"$OUTDIR/errors.txt"
  local rc=$?
  echo "{\"preset\":\"$1\",\"format\":\"$2\",\"dtype\":\"$3\",\"rc\":$rc,\"seconds\":$(( $(date +%s) - t0 ))}" >> "$W/gen.jsonl"
}
: > "$W/gen.jsonl"
# At most GEN_JOBS at once: each holds the weights several times over while quantizing (18 at once were OOM-killed
# on a 23 GB machine even at 1 layer).
throttle() { while [ "$(jobs -rp | wc -l)" -ge "${GEN_JOBS:-6}" ]; do sleep 1; done; }
# Every dtype for 256M; the 500M's rarer ones (uint8, quantized, bnb4) only when asked: their cells come last.
D256=${D256:-fp32 fp16 q4 q4f16 int8 uint8 quantized bnb4}
D500=${D500:-fp32 q4 fp16 q4f16 int8}
for p in smolvlm-256m smolvlm-500m; do
  [ $p = smolvlm-256m ] && ds=$D256 || ds=$D500
  for d in $ds; do throttle; gen $p fused $d "$W/$p-fused" & done
  throttle; gen $p torch fp32 "$W/$p-torch" decoder_model_merged &
done
wait
for p in smolvlm-256m smolvlm-500m; do  # the twin shares the fused folder's vision and embed files (same weights)
  for f in "$W/$p-fused"/onnx/vision_encoder*.onnx "$W/$p-fused"/onnx/embed_tokens*.onnx; do ln -sf "$f" "$W/$p-torch/onnx/"; done
done
python3 - "$W" > "$OUTDIR/generate.json" <<'PY'
import json, os, sys
w = sys.argv[1]
runs = [json.loads(l) for l in open(os.path.join(w, "gen.jsonl"))]
files = {d: {f: os.path.getsize(os.path.join(w, d, "onnx", f)) for f in sorted(os.listdir(os.path.join(w, d, "onnx")))}
         for d in sorted(os.listdir(w)) if os.path.isdir(os.path.join(w, d, "onnx"))}
ops = {}
for d in files:
    try: ops[d] = {f: v["ops"] for f, v in json.load(open(os.path.join(w, d, "lookalike.json")))["files"].items() if f.startswith("decoder")}
    except Exception as e: ops[d] = str(e)
print(json.dumps({"runs": runs, "bytes": files, "decoder_ops": ops}))
PY
echo "generated at $(( $(date +%s) - START )) s" > "$OUTDIR/status.txt"

# ---- parity against PyTorch (CPU; before the timed cells so it does not skew them) ----
{ for p in smolvlm-256m smolvlm-500m; do
    $PY tools/lookalike/parity_torch.py ${LAYERS:+--layers $LAYERS} --preset $p "$W/$p-torch" "$W/$p-fused" 2>>"$OUTDIR/errors.txt"
  done > "$W/parity.jsonl"; python3 -c "import json,sys; print(json.dumps([json.loads(l) for l in open('$W/parity.jsonl')]))" > "$OUTDIR/parity.json"; }
echo "parity at $(( $(date +%s) - START )) s" >> "$OUTDIR/status.txt"

# ---- every policy, per (model, dtype, device), most important first ----
cell() { # preset format dtype device
  [ "$(left)" -gt 20 ] || { echo "{\"skipped\":\"time\",\"preset\":\"$1\",\"format\":\"$2\",\"dtype\":\"$3\",\"device\":\"$4\"}" >> "$OUTDIR/table.jsonl"; return; }
  local g=$W/gpumem.$$.$RANDOM
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$g" 2>/dev/null & local s=$!
  timeout $(( $(left) + 15 )) $N "$X/app/scripts/device/lookalike-ask.js" "$W/$1-$2" "$3" "$4" "$IMAGE" "$MAXNEW" 2>>"$OUTDIR/errors.txt" \
    | sed "s/^{/{\"preset\":\"$1\",\"format\":\"$2\",/" >> "$OUTDIR/table.jsonl"
  kill $s 2>/dev/null; wait $s 2>/dev/null
  echo "{\"preset\":\"$1\",\"format\":\"$2\",\"dtype\":\"$3\",\"device\":\"$4\",\"gpuMemPeakMiB\":$(sort -n "$g" | tail -1 || echo null)}" >> "$OUTDIR/table.jsonl"
}
for spec in "smolvlm-256m fused fp32" "smolvlm-256m fused q4" "smolvlm-256m torch fp32" "smolvlm-256m fused fp16" "smolvlm-256m fused q4f16" \
            "smolvlm-500m fused fp32" "smolvlm-500m fused q4" "smolvlm-500m torch fp32" "smolvlm-500m fused fp16" "smolvlm-500m fused q4f16" \
            "smolvlm-256m fused int8" "smolvlm-256m fused uint8" "smolvlm-256m fused quantized" "smolvlm-256m fused bnb4" \
            "smolvlm-500m fused int8" "smolvlm-500m fused uint8" "smolvlm-500m fused quantized" "smolvlm-500m fused bnb4"; do
  set -- $spec
  cell $1 $2 $3 webgpu & WG=$!   # the GPU cell and the CPU cell of one model run side by side
  cell $1 $2 $3 cpu
  wait $WG
done
echo "finished at $(( $(date +%s) - START )) s" >> "$OUTDIR/status.txt"
