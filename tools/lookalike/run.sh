#!/usr/bin/env bash
# npm run lookalike -- ARGS: the generator under the Python that scripts/setup.sh prepared (or $ELASTIC_VLM_PYTHON).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${ELASTIC_VLM_PYTHON:-${XDG_CACHE_HOME:-$HOME/.cache}/elastic-vlm/pyenv/bin/python}"
if [ ! -x "$py" ]; then
  if python3 -c 'import onnx, onnxruntime, numpy, onnx_ir' 2>/dev/null; then py=python3
  else echo "error: no Python with onnx, onnxruntime, numpy, onnx-ir: run scripts/setup.sh (or set ELASTIC_VLM_PYTHON)" >&2; exit 2; fi
fi
exec "$py" "$here/lookalike.py" "$@"
