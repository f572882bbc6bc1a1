#!/usr/bin/env bash
# On the lent GPU machine: the fused 256M look-alike (tools/lookalike) on WebGPU against the CPU, full cache and
# StreamingLLM (the policies WebGPU's GroupQueryAttention can serve), fp32 / fp16 / q4f16: speed, memory, and
# whether the GPU's logits match the CPU's at prefill and after compactions (true positions through position_ids).
# Writes $1/webgpu.jsonl. Needs the carry of build-carry.sh unpacked at .devcarry/x (or CARRY).
set -u
OUTDIR=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
X=$(cd "${CARRY:-$ROOT/.devcarry/x}" && pwd)
export NODE_PATH=$X/nm ORT_DISABLE_TELEMETRY=1
W=${WORK:-/tmp/lookalike-gpu}
mkdir -p "$W"
cd "$ROOT"
for d in fp32 fp16 q4f16; do
  python3 tools/lookalike/lookalike.py --preset smolvlm-256m --format fused --dtypes $d --out "$W/256m" > /dev/null 2>>"$OUTDIR/errors.txt" &
done
wait
for d in fp16 q4f16 fp32; do
  for dev in webgpu cpu; do
    POLICIES=full,streaming,elastic timeout 150 "$X/node" "$X/app/scripts/device/lookalike-ask.js" "$W/256m" $d $dev "$ROOT/media/samples/bars.png" ${MAXNEW:-64} \
      2>>"$OUTDIR/errors.txt" | sed "s/^{/{\"dtypeRun\":\"$d\",/" >> "$OUTDIR/webgpu.jsonl"
  done
done
echo done
