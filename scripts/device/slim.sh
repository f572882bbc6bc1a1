#!/usr/bin/env bash
# The device tool sends the working tree and the carried paths, 64 MiB in all: the Node carry (about 42 MB) and the
# float16-weights default model (16 MB) leave little room, so a run moves the tracked paths no device script reads
# out of the tree first and back afterwards. `out` refuses to run twice; `back` restores exactly what `out` moved.
#   bash scripts/device/slim.sh out   # before the device call
#   bash scripts/device/slim.sh back  # right after it (also after a failed call)
set -euo pipefail
cd "$(dirname "$0")/../.."
STASH=${SLIM_STASH:-../.elastic-vlm-slim}
PATHS=(models/default/onnx test/fixtures docs/gpu docs/eval docs/images docs/bench train/fonts data/unfamiliar)
case ${1:-} in
  out)
    [ -e "$STASH" ] && { echo "error: $STASH exists: run 'slim.sh back' first" >&2; exit 2; }
    mkdir -p "$STASH"
    for p in "${PATHS[@]}"; do [ -e "$p" ] && { mkdir -p "$STASH/$(dirname "$p")"; mv "$p" "$STASH/$p"; }; done
    echo "moved to $STASH: ${PATHS[*]}" ;;
  back)
    [ -d "$STASH" ] || { echo "error: nothing to restore ($STASH missing)" >&2; exit 2; }
    for p in "${PATHS[@]}"; do [ -e "$STASH/$p" ] && { mkdir -p "$(dirname "$p")"; mv "$STASH/$p" "$p"; }; done
    find "$STASH" -depth -type d -empty -delete
    [ -e "$STASH" ] && { echo "error: $STASH still holds files" >&2; exit 2; }
    git status --short -- "${PATHS[@]}" | head ;;
  *) echo "usage: slim.sh out|back" >&2; exit 2 ;;
esac
