#!/usr/bin/env bash
# On the lent GPU machine: the fused 256M look-alike (tools/lookalike) on WebGPU against the CPU, full cache and
# StreamingLLM (the policies WebGPU's GroupQueryAttention can serve), fp32 / fp16 / q4f16: speed, memory, and
# whether the GPU's logits match the CPU's at prefill and after compactions (true positions through position_ids).
# Writes $1/webgpu.jsonl. Needs the carry of build-carry.sh unpacked at .devcarry/x (or CARRY).
set -u
OUTDIR=$1
. "$(dirname "$0")/carry-env.sh"  # ROOT, X (the unpacked carry), N (its node), NODE_PATH, fused_256m
W=${WORK:-/tmp/lookalike-gpu}
mkdir -p "$W"
cd "$ROOT"
fused_256m "$W/256m" fp32 fp16 q4f16
gpumem() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$1" 2>/dev/null & echo $!; }
for d in ${DTYPES:-fp16 q4f16 fp32}; do
  for dev in webgpu cpu; do
    g=$W/mem.$d.$dev; s=$(gpumem "$g")
    POLICIES=full,streaming,elastic timeout 150 "$X/node" "$X/app/scripts/device/lookalike-ask.js" "$W/256m" $d $dev "$ROOT/media/samples/bars.png" ${MAXNEW:-64} \
      2>>"$OUTDIR/errors.txt" | sed "s/^{/{\"dtypeRun\":\"$d\",/" >> "$OUTDIR/webgpu.jsonl"
    kill $s; echo "{\"dtypeRun\":\"$d\",\"device\":\"$dev\",\"gpuMemPeakMiB\":$(sort -n "$g" | tail -1)}" >> "$OUTDIR/webgpu.jsonl"
  done
done
# First token per image-detail level for a 1920 x 1080 screenshot, full cache, fp16, warm worker (the second ask of
# each level runs with the image's features cached: both rows are kept).
for detail in global low medium full; do
  for dev in webgpu cpu; do
    DETAIL=$detail POLICIES=full,full timeout 120 "$X/node" "$X/app/scripts/device/lookalike-ask.js" "$W/256m" fp16 $dev "$ROOT/media/samples/screenshot-1080p.png" 8 \
      2>>"$OUTDIR/errors.txt" | sed "s/^{/{\"detailRun\":\"$detail\",/" >> "$OUTDIR/detail.jsonl"
  done
done
echo done
