#!/usr/bin/env bash
# Runs on the lent GPU machine (see build-carry.sh): the same questions on CPU and on WebGPU for the test model and
# the default model, then benchmark rows on both providers. Results land in $1 (the device tool's $OUT).
set -u
OUTDIR=$1
. "$(dirname "$0")/carry-env.sh"  # ROOT, X (the unpacked carry), N (its node), NODE_PATH
cd "$ROOT"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; $N --version; date -u; } > "$OUTDIR/machine.txt" 2>&1
ask() { # model dtype device image question
  $N "$X/app/runtime/cli/ask.js" "$4" "$5" --model "$1" ${2:+--dtype $2} --device "$3" --json --in-process --max-new-tokens 48 --policy elastic --keep 0.5 2>>"$OUTDIR/errors.txt"
}
echo '[' > "$OUTDIR/answers.json"
sep=''
for spec in "test/fixtures/tiny-model||test/fixtures/images/diagram.png|What is this?" \
            "${DEFAULT_MODEL:-models/default}|${DEFAULT_DTYPE:-}|media/samples/bars.png|Which bar is the tallest?" \
            "${DEFAULT_MODEL:-models/default}|${DEFAULT_DTYPE:-}|media/samples/ui.png|What is the window title?"; do
  IFS='|' read -r m dt img q <<<"$spec"
  for dev in cpu webgpu; do
    r=$(ask "$m" "$dt" "$dev" "$img" "$q")
    printf '%s{"model":"%s","dtype":"%s","device":"%s","image":"%s","result":%s}\n' "$sep" "$m" "$dt" "$dev" "$img" "${r:-null}" >> "$OUTDIR/answers.json"
    sep=','
  done
done
echo ']' >> "$OUTDIR/answers.json"
: > "$OUTDIR/bench.jsonl"
for scen in describe long; do
  for cell in "full 1" "elastic 0.5" "elastic 0.2" "h2o 0.2" "streaming 0.2"; do
    set -- $cell
    for dev in webgpu cpu; do
      spec=$(printf '{"scenario":"%s","policy":"%s","keep":%s,"provider":"%s","modelDir":"%s","image":"%s","shortQuestion":"Which bar is the tallest?"%s}' \
        "$scen" "$1" "$2" "$dev" "$ROOT/${DEFAULT_MODEL:-models/default}" "$ROOT/media/samples/bars.png" "${DEFAULT_DTYPE:+,\"dtype\":\"$DEFAULT_DTYPE\"}")
      timeout 120 $N "$X/app/bench/scenarios.js" "$spec" >> "$OUTDIR/bench.jsonl" 2>>"$OUTDIR/errors.txt" || echo "{\"failed\":$spec}" >> "$OUTDIR/bench.jsonl"
    done
  done
done
echo done
