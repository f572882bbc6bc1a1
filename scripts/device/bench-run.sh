#!/usr/bin/env bash
# On the lent GPU machine: `npm run bench` on the 256M look-alike in the published (fused) format, bundled in the
# carry (scripts/device/build-carry.sh). PHASES (comma list, default cpu-describe):
#   cpu-describe  every CPU cell and transformers.js on the same fp32 folder, describe scenario
#   cpu-long      full and elastic (0.5, 0.2) and transformers.js, long scenario
#   webgpu        WebGPU's settings A/B (ELASTIC_VLM_WEBGPU) on a 64-token fp16 answer, then the fp16 describe rows
# Writes $1/bench-*.json and their logs. The look-alikes are built once per machine under $WORK.
set -u
OUTDIR=$1
. "$(dirname "$0")/carry-env.sh"  # ROOT, X (the unpacked carry), N (its node), NODE_PATH, fused_256m
W=${WORK:-/tmp/lookalike-bench}
mkdir -p "$W"
cd "$ROOT"
fused_256m "$W/256m" fp32 fp16
nproc > "$OUTDIR/nproc.txt"
bench() { local name=$1; shift; timeout "${LIMIT:-540}" "$N" "$X/app/bench/bench.js" --model "$W/256m" --json "$@" > "$OUTDIR/bench-$name.json" 2> "$OUTDIR/bench-$name.log"; echo "$name rc=$?" >> "$OUTDIR/status.txt"; }
for phase in $(echo "${PHASES:-cpu-describe}" | tr , ' '); do
  case $phase in
    cpu-describe) bench cpu-describe --scenario describe ;;
    cpu-long) bench cpu-long --scenario long --policy full,elastic --no-prefill ;;
    webgpu)
      for s in "" "validationMode=disabled" "validationMode=disabled,maxNumPendingDispatches=64"; do
        ELASTIC_VLM_WEBGPU=$s POLICIES=full,full,streaming timeout 150 "$N" "$X/app/scripts/device/lookalike-ask.js" "$W/256m" fp16 webgpu "$ROOT/media/samples/bars.png" 64 \
          2>>"$OUTDIR/errors.txt" | sed "s/^{/{\"webgpuSettings\":\"$s\",/" >> "$OUTDIR/webgpu-settings.jsonl"
      done
      ELASTIC_VLM_WEBGPU=${WEBGPU_SETTINGS:-validationMode=disabled} bench webgpu-describe --scenario describe --provider webgpu --dtype fp16 --policy full,streaming --no-peer --no-prefill ;;
    *) echo "unknown phase $phase" >> "$OUTDIR/errors.txt" ;;
  esac
done
echo done >> "$OUTDIR/status.txt"
