#!/usr/bin/env bash
# One-time setup on a fresh Debian 12 machine (as root for the system packages; skipped when present):
#   - Debian chromium + libkrb5-dev (the end-to-end tests' browser; a native module of code-server builds against krb5)
#   - Mesa 25 lavapipe (software Vulkan) from bookworm-backports, so the WebGPU path runs without a GPU
#   - npm dependencies (onnxruntime-node's CUDA download is skipped: it cannot work offline), then the build.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[setup] $*"; }

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
[ -e /usr/include/gssapi/gssapi.h ] || need_apt+=(libkrb5-dev)
# The calibration-image test renders with Debian's Pillow (train/calibration_images.py runs on /usr/bin/python3).
[ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import PIL' 2>/dev/null && need_apt+=(python3-pil)
lavapipe_ok() { [ -e /usr/share/vulkan/icd.d/lvp_icd.json ] && dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '^25\.'; }

if [ "${#need_apt[@]}" -gt 0 ] || ! lavapipe_ok; then
  if [ "$(id -u)" != 0 ]; then
    say "system packages missing (${need_apt[*]:-} lavapipe); run this script as root, or install them yourself"
  else
    export DEBIAN_FRONTEND=noninteractive
    if ! lavapipe_ok; then
      # bookworm-backports is derived from the machine's own Debian sources (same URIs), so no mirror is hard-coded.
      src=/etc/apt/sources.list.d/debian.sources
      dst=/etc/apt/sources.list.d/elastic-vlm-backports.sources
      if [ -f "$src" ] && [ ! -f "$dst" ]; then
        awk 'BEGIN{RS=""; ORS="\n\n"} /Suites:[^\n]*bookworm( |$|\n)/ && !/security/ {sub(/Suites:[^\n]*/, "Suites: bookworm-backports"); print; exit}' "$src" > "$dst"
        say "added $(grep -c Suites "$dst") backports source derived from $src"
      fi
    fi
    apt-get update -qq
    [ "${#need_apt[@]}" -gt 0 ] && apt-get install -y -qq "${need_apt[@]}" >/dev/null
    lavapipe_ok || apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null || say "lavapipe from backports could not be installed: WebGPU tests will be skipped"
  fi
fi

say "npm dependencies"
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
# Python for the look-alike model generator (npm run lookalike, its tests): a venv outside the checkout, from the
# machine's package index; no PyTorch.
py_env="${XDG_CACHE_HOME:-$HOME/.cache}/elastic-vlm/pyenv"
if ! "$py_env/bin/python" -c 'import onnx, onnxruntime, numpy, onnx_ir' 2>/dev/null; then
  say "python deps for tools/lookalike into $py_env"
  python3 -m venv "$py_env" && "$py_env/bin/pip" install -q --retries 1 --timeout 20 onnx onnxruntime numpy onnx-ir \
    || say "python deps could not be installed: npm run lookalike and its tests will fail"
fi
say "build"
npm run --silent build
# Node 24 (the float16 tests and VS Code's server run on it), code-server and playwright-core for the end-to-end
# tests, cached outside the checkout (test/e2e/tools.sh; a later run finds them there).
if [ "${SKIP_E2E_TOOLS:-}" != 1 ]; then
  say "end-to-end tools"
  bash test/e2e/tools.sh
fi
say "done"
