#!/usr/bin/env bash
# On the lent GPU machine: issue 15's peer check against NVIDIA kvpress. Rebuilds the PyTorch twin of the default
# model from its ONNX files (train/from_onnx.py, checked against onnxruntime), then runs kvpress's SnapKVPress,
# StreamingLLMPress and ObservedAttentionPress from their source on it (tools/kvpress_check/compare.py, cuda) against
# our policies' kept entries (tools/kvpress_check/ours.json) and accuracies (tools/kvpress_check/ours_eval.json), both
# produced on a CPU with Node beforehand. Python only: no Node, no carry but the kvpress source.
# Usage: bash scripts/device/kvpress-check.sh OUT [KVPRESS_SRC (default .devcarry/kvpress)]
# Writes under OUT: env.txt, from_onnx.log, from_onnx_report.json, compare.log, kvpress_check.json, kvpress_check.md.
set -uo pipefail
OUTDIR=${1:?usage: kvpress-check.sh OUT [KVPRESS_SRC]}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=${2:-$ROOT/.devcarry/kvpress}
TWIN=${TWIN:-/tmp/kvpress-twin}
export PYTHONUNBUFFERED=1
mkdir -p "$OUTDIR"
cd "$ROOT"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c 'import sys, torch, transformers; print(sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())'
  echo "kvpress $(cat "$SRC/COMMIT" 2>/dev/null || echo '(no COMMIT file)')"; date -u; } > "$OUTDIR/env.txt" 2>&1
[ -d "$SRC/kvpress/presses" ] || { echo "no kvpress source at $SRC (carry .devcarry/kvpress)" | tee -a "$OUTDIR/env.txt"; exit 2; }
t0=$(date +%s)
python3 train/from_onnx.py --model models/default --out "$TWIN" > "$OUTDIR/from_onnx.log" 2>&1
rc=$?
cp "$TWIN/from_onnx_report.json" "$OUTDIR/" 2>/dev/null
echo "from_onnx rc=$rc ($(( $(date +%s) - t0 )) s; 0 verified, 3 rebuilt but not matching onnxruntime)" | tee -a "$OUTDIR/env.txt"
[ -f "$TWIN/pt/config.json" ] || { echo "no twin at $TWIN/pt"; tail -20 "$OUTDIR/from_onnx.log"; exit 3; }
python3 tools/kvpress_check/compare.py --kvpress "$SRC" --model models/default --twin "$TWIN/pt" \
  --ours tools/kvpress_check/ours.json --ours-eval tools/kvpress_check/ours_eval.json --data data/heldout \
  --out "$OUTDIR" --device cuda 2>&1 | tee "$OUTDIR/compare.log" | grep -v '^sample '
rc2=${PIPESTATUS[0]}
echo "compare rc=$rc2, total $(( $(date +%s) - t0 )) s" | tee -a "$OUTDIR/env.txt"
exit "$rc2"
