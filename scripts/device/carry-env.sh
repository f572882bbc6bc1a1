# Sourced by the scripts/device/*.sh runners on the lent GPU machine: the repository (ROOT), the unpacked carry
# (X: node, nm/, app/; CARRY overrides where it is) and its Node (N), with its modules on NODE_PATH.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
X=$(cd "${CARRY:-$ROOT/.devcarry/x}" && pwd)
export NODE_PATH=$X/nm ORT_DISABLE_TELEMETRY=1
N=$X/node
# fused_lookalike PRESET DIR DTYPE...: the fused look-alike of PRESET (smolvlm-256m, smolvlm-500m) in DIR, one
# generator per dtype in parallel; a dtype whose decoder is already there is skipped (the weights are seeded, so it
# is the same folder). Errors go to $OUTDIR/errors.txt. fused_256m DIR DTYPE...: the 256M one.
fused_lookalike() {
  local preset=$1 dir=$2 d; shift 2
  for d in "$@"; do
    [ -f "$dir/onnx/decoder_model_merged$([ "$d" = fp32 ] || echo "_$d").onnx" ] && continue
    python3 "$ROOT/tools/lookalike/lookalike.py" --preset "$preset" --format fused --dtypes "$d" --out "$dir" > /dev/null 2>>"$OUTDIR/errors.txt" &
  done
  wait
}
fused_256m() { fused_lookalike smolvlm-256m "$@"; }
