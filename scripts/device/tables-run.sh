#!/usr/bin/env bash
# On the lent GPU machine: issue 14's real-size tables in one call, a WebGPU lane and a CPU lane side by side.
#   GPU_PHASES / CPU_PHASES   bench-run.sh phases, "SIZE:phase,SIZE:phase" (e.g. "256m:webgpu-describe,500m:webgpu-long")
#   CPU_CORES                 the cores the CPU lane is pinned to (default 2-15: the WebGPU lane's process and the
#                             GPU driver keep cores 0-1), so that neither lane times the other's work
#   LANE_LIMIT                seconds each lane may run (default 470), so that the archive is written inside a 600 s call
# Builds both look-alikes first (fp32 and fp16, in parallel), then writes $1/tables.tgz: every rows-*.jsonl (one line
# per row, written as measured), bench-*.json / .log, gpumem-*.txt and status.txt.
set -u
OUTDIR=$1
. "$(dirname "$0")/carry-env.sh"
R=/tmp/tables-run && rm -rf "$R" && mkdir -p "$R"
here=$(dirname "$0")
SIZE=256m BUILD_ONLY=1 bash "$here/bench-run.sh" "$R" &
SIZE=500m BUILD_ONLY=1 bash "$here/bench-run.sh" "$R" &
wait
echo "built $(date +%T)" >> "$R/status.txt"
lane() {  # lane NAME PHASES [PIN]
  local name=$1 list=$2 pin=${3:-} item
  for item in $(echo "$list" | tr , ' '); do
    LANE=$name PIN=$pin SIZE=${item%%:*} PHASES=${item#*:} LIMIT=${LANE_LIMIT:-470} bash "$here/bench-run.sh" "$R"
  done
}
end=$((SECONDS + ${LANE_LIMIT:-470}))
[ -n "${GPU_PHASES:-}" ] && lane gpu "$GPU_PHASES" &
# As many onnxruntime threads as the lane has cores (ours and transformers.js alike, bench/peer.ts).
cores=${CPU_CORES:-2-15}
[ -n "${CPU_PHASES:-}" ] && ELASTIC_VLM_THREADS=$(( ${cores#*-} - ${cores%-*} + 1 )) lane cpu "$CPU_PHASES" "taskset -c $cores" &
# Whatever a lane has not finished by the limit is stopped; the rows it measured are in rows-*.jsonl already.
while [ $SECONDS -lt $end ] && [ -n "$(jobs -r)" ]; do sleep 2; done
# The lanes first (so that they start nothing more), then what they had running.
for j in $(jobs -p); do pkill -P "$j" 2>/dev/null; kill "$j" 2>/dev/null; done
pkill -f "$X/app/bench" 2>/dev/null; sleep 1
echo "lanes stopped $(date +%T)" >> "$R/status.txt"
tar -C "$R" -czf "$OUTDIR/tables.tgz" .
ls -la "$R" > "$OUTDIR/listing.txt"
