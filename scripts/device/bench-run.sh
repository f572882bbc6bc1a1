#!/usr/bin/env bash
# On the lent GPU machine: `npm run bench` on a look-alike in the published (fused) format, bundled in the carry
# (scripts/device/build-carry.sh). SIZE=256m (default) or 500m. PHASES (comma list, default cpu-describe):
#   cpu-describe, cpu-short, cpu-long   every CPU cell (full; elastic, h2o, streaming at 0.5 and 0.2) and
#                                        transformers.js on the fp32 folder (the prefill check in describe only)
#   webgpu-describe, webgpu-short, webgpu-long   the fp16 folder on WebGPU, every cell (the score policies through
#                                        the scoring graph), the GPU's memory sampled every 100 ms (gpumem-*.txt, MiB;
#                                        gpumem-idle.txt before)
#   webgpu-batch1   webgpu-describe's elastic and streaming cells evicting one entry a step (ELASTIC_VLM_GPU_EVICT_BATCH=1)
#   detail      the first token per image detail, 1920 x 1080 screenshot, in a warm process (WARMUP=1 in
#               lookalike-ask: a mirrored copy of the image asked first), fp16 on WebGPU then fp32 on the CPU
#   webgpu      WebGPU's settings A/B (ELASTIC_VLM_WEBGPU) on a 64-token fp16 answer (run 6)
# Writes $1/bench-$SIZE-*.json and their logs, and every row as it is measured to $1/rows-$SIZE-$LANE.jsonl (LANE
# default main). PIN prefixes the CPU phases (e.g. PIN="taskset -c 2-15" beside a WebGPU lane). BUILD_ONLY=1 builds
# the look-alikes and stops. The look-alikes are built once per machine under $WORK.
set -u
OUTDIR=$1
. "$(dirname "$0")/carry-env.sh"  # ROOT, X (the unpacked carry), N (its node), NODE_PATH, fused_lookalike
W=${WORK:-/tmp/lookalike-bench}
SIZE=${SIZE:-256m}
M=$W/$SIZE
mkdir -p "$W"
cd "$ROOT"
fused_lookalike "smolvlm-$SIZE" "$M" fp32 fp16
[ "${BUILD_ONLY:-}" = 1 ] && exit 0
nproc > "$OUTDIR/nproc.txt"
status() { echo "$SIZE $1 rc=$2 $(date +%T)" >> "$OUTDIR/status.txt"; }
bench() {
  local name=$1; shift
  # shellcheck disable=SC2086 # BENCH_ARGS: extra options, word-split on purpose (e.g. "--policy full,elastic")
  # shellcheck disable=SC2086 # PIN: a command prefix, word-split on purpose
  timeout "${LIMIT:-540}" ${PIN:-} "$N" "$X/app/bench/bench.js" --model "$M" --json --rows "$OUTDIR/rows-$SIZE-${LANE:-main}.jsonl" "$@" ${BENCH_ARGS:-} > "$OUTDIR/bench-$SIZE-$name.json" 2> "$OUTDIR/bench-$SIZE-$name.log"
  status "$name" $?
}
gpumem() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$OUTDIR/gpumem-$SIZE-$1.txt" 2>/dev/null & GPUMEM=$!; }
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv > "$OUTDIR/gpumem-idle.txt"
for phase in $(echo "${PHASES:-cpu-describe}" | tr , ' '); do
  case $phase in
    cpu-describe) bench cpu-describe --scenario describe ;;
    cpu-short|cpu-long) bench "$phase" --scenario "${phase#cpu-}" --no-prefill ;;
    webgpu-describe|webgpu-short|webgpu-long)
      gpumem "$phase"
      ELASTIC_VLM_WEBGPU=${WEBGPU_SETTINGS:-} bench "$phase" --scenario "${phase#webgpu-}" --provider webgpu --dtype fp16 --no-peer --no-prefill
      kill $GPUMEM ;;
    webgpu-batch1)
      ELASTIC_VLM_GPU_EVICT_BATCH=1 bench "$phase" --scenario describe --provider webgpu --dtype fp16 --policy elastic,streaming --no-peer --no-prefill ;;
    detail)
      for dev in webgpu cpu; do
        dtype=$([ $dev = webgpu ] && echo fp16 || echo fp32)
        for d in global low medium full; do
          [ $dev = webgpu ] && gpumem "detail-$d"
          WARMUP=1 DETAIL=$d POLICIES=full,full timeout 120 "$N" "$X/app/scripts/device/lookalike-ask.js" "$M" $dtype $dev "$ROOT/media/samples/screenshot-1080p.png" 8 \
            >> "$OUTDIR/detail-$SIZE.jsonl" 2>>"$OUTDIR/errors.txt"
          status "detail-$dev-$d" $?
          [ $dev = webgpu ] && kill $GPUMEM
        done
      done ;;
    webgpu)
      for s in "" "validationMode=disabled" "validationMode=disabled,maxNumPendingDispatches=64"; do
        ELASTIC_VLM_WEBGPU=$s POLICIES=full,full,streaming timeout 150 "$N" "$X/app/scripts/device/lookalike-ask.js" "$M" fp16 webgpu "$ROOT/media/samples/bars.png" 64 \
          2>>"$OUTDIR/errors.txt" | sed "s/^{/{\"webgpuSettings\":\"$s\",/" >> "$OUTDIR/webgpu-settings.jsonl"
      done ;;
    *) echo "unknown phase $phase" >> "$OUTDIR/errors.txt" ;;
  esac
done
echo done >> "$OUTDIR/status.txt"
