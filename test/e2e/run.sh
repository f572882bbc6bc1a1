#!/usr/bin/env bash
# End-to-end tests of the packaged extension, offline:
#   tools (cached outside the checkout) -> build -> npm run package (.vsix for TARGET) -> check the .vsix ->
#   install it into a fresh extensions dir -> VS Code's server (own process group, loopback) ->
#   extension-host tests (mocha) against the INSTALLED copy -> UI tests (Chromium + playwright-core) with screenshots.
# usage: bash test/e2e/run.sh [TARGET]      env: E2E_TOOLS (tool cache), E2E_ARTIFACTS (screenshots, logs),
#        PORT, E2E_SKIP=ext|ui, E2E_ANSWER_TIMEOUT_MS (UI tests: how long one answer may take)
# The tests run the REAL inference worker (dist/worker.js) with the embedded default model of the .vsix.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/test/e2e
TARGET=${1:-linux-x64}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
ART=${E2E_ARTIFACTS:-$ROOT/.e2e/artifacts}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/elastic-vlm-e2e.XXXX")
trap '[ "${E2E_KEEP:-}" = 1 ] || rm -rf "$WORK"' EXIT
say() { echo "[$(date +%T)] $*"; }
results=()

say "1/8 tools (cache: ${E2E_TOOLS:-$HOME/.cache/elastic-vlm-e2e})"
source "$HERE/tools.sh"

say "2/8 build"
cd "$ROOT"
[ -d node_modules/esbuild ] || ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
node esbuild.mjs >/dev/null
rm -rf out/e2e-ext
npx --no-install esbuild test/e2e/ext/*.ts --bundle --platform=node --format=cjs --target=node20 \
  --external:vscode --external:mocha --outdir=out/e2e-ext --log-level=warning

say "3/8 package ($TARGET)"
bash scripts/package.sh "$TARGET" "$WORK/elastic-vlm.vsix"

say "4/8 check the .vsix"
rc=0
node "$HERE/vsix-check.js" "$WORK/elastic-vlm.vsix" "$TARGET" | tee "$WORK/vsix.log" || rc=1
results+=("$(grep -E '^vsix: ' "$WORK/vsix.log" | tail -1)")

say "5/8 install the .vsix into a fresh extensions dir"
mkdir -p "$WORK/ext" "$WORK/data" "$WORK/ws"
PATH=$N24/bin:$PATH node "$CS/out/node/entry.js" --config "$WORK/cs.yaml" --extensions-dir "$WORK/ext" \
  --user-data-dir "$WORK/data" --install-extension "$WORK/elastic-vlm.vsix" | tail -1
INSTALLED=$(ls -d "$WORK"/ext/elastic-vlm.elastic-vlm-*/ | head -1)
INSTALLED=${INSTALLED%/}

say "6/8 workspace of sample images"
[ -d media/samples ] && cp -r media/samples/. "$WORK/ws/" 2>/dev/null || true
node "$HERE/make-images.js" "$WORK/ws" >/dev/null
# a photo of the unfamiliar set: the panel's unfamiliar-image warning (ui.test.js)
cp data/unfamiliar/photo_ladybird.jpg "$WORK/ws/ladybird.jpg"
# a calm workbench for the screenshots: no welcome page, no chat side bar
mkdir -p "$WORK/ws/.vscode"
cat > "$WORK/ws/.vscode/settings.json" <<'JSON'
{ "workbench.startupEditor": "none", "workbench.secondarySideBar.defaultVisibility": "hidden", "chat.disableAIFeatures": true,
  "workbench.tips.enabled": false, "files.exclude": { ".vscode": true } }
JSON
if [ ! -f "$INSTALLED/dist/worker.js" ] || [ ! -f "$INSTALLED/models/default/config.json" ]; then
  echo "the installed extension lacks dist/worker.js or the embedded model models/default/: the e2e tests need both" >&2
  exit 1
fi
SERVER_ENV=(ELASTIC_VLM_E2E_INSTALLED="$INSTALLED")
say "   worker: the real dist/worker.js with the embedded model"

say "7/8 VS Code server on 127.0.0.1:$PORT (own process group)"
setsid env "${SERVER_ENV[@]}" PATH="$N24/bin:$PATH" node "$CS/lib/vscode/out/server-main.js" --host 127.0.0.1 --port "$PORT" \
  --without-connection-token --accept-server-license-terms --enable-smoke-test-driver \
  --disable-telemetry --telemetry-level off --disable-workspace-trust \
  --extensions-dir "$WORK/ext" --user-data-dir "$WORK/data" --server-data-dir "$WORK/data/server" > "$WORK/server.log" 2>&1 &
SRV=$!
# The server's process group, then the ~150 MB work folder (the .vsix, its installed copy, the server's data);
# E2E_KEEP=1 keeps the folder for debugging. Artifacts were copied out to $ART before this runs.
cleanup() { kill -- -"$SRV" 2>/dev/null || true; sleep 0.5; [ "${E2E_KEEP:-}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done

say "8/8 tests"
rm -rf "$ART" && mkdir -p "$ART"
if [ "${E2E_SKIP:-}" != ext ]; then
  PATH=$N24/bin:$PATH node "$HERE/run-ext-tests.js" "$PORT" "$INSTALLED" "$ROOT/out/e2e-ext" "$WORK/ws" 2>&1 | tee "$ART/ext-host.log" \
    || true
  grep -q 'exited with 0 ' "$ART/ext-host.log" || rc=1
  results+=("$(grep -E 'ext-host: [0-9]+ passed' "$ART/ext-host.log" | tail -1 | sed 's/.*\(ext-host: \)/\1/')")
fi
if [ "${E2E_SKIP:-}" != ui ]; then
  PORT=$PORT WORKSPACE="$WORK/ws" OUT="$ART" PATH=$N24/bin:$PATH node "$HERE/ui.test.js" 2>&1 | tee "$ART/ui.log" || true
  grep -qE '^ui: [0-9]+ passed, 0 failed' "$ART/ui.log" || rc=1
  results+=("$(grep -E '^ui: ' "$ART/ui.log" | tail -1)")
fi
cp "$WORK/server.log" "$ART/server.log" 2>/dev/null || true
for f in "$WORK"/data/logs/*/exthost*/*/"Elastic VLM.log"; do
  [ -f "$f" ] && cp "$f" "$ART/elastic-vlm-$(basename "$(dirname "$(dirname "$f")")").log"
done
say "screenshots: $(ls "$ART"/*.png 2>/dev/null | tr '\n' ' ')"
P=0; F=0
for r in "${results[@]}"; do
  echo "$r"
  p=$(echo "$r" | sed -nE 's/.* ([0-9]+) passed.*/\1/p'); f=$(echo "$r" | sed -nE 's/.*passed, ([0-9]+) failed.*/\1/p')
  P=$((P + ${p:-0})); F=$((F + ${f:-1}))
done
echo "e2e: $P passed, $F failed"
[ "$F" = 0 ] && [ "$rc" = 0 ]
