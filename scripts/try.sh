#!/usr/bin/env bash
# npm run try: the extension in a real VS Code in the browser, on a sample workspace of images, on loopback only.
# Builds and packages the .vsix, installs it into a fresh extensions folder, copies media/samples/ into a temporary
# workspace, starts VS Code's server (code-server's bundled server-main.js, tools cached outside the checkout) and
# prints the URL. Ctrl-C stops it.   env: PORT (default 8080), E2E_TOOLS (tool cache)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${PORT:-8080}
source "$ROOT/test/e2e/tools.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/elastic-vlm-try.XXXX")
# The work folder (~150 MB: the .vsix, its installed copy, the server data) goes when the script ends.
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"
echo "[try] packaging"
bash scripts/package.sh linux-x64 "$WORK/elastic-vlm.vsix" | tail -1
mkdir -p "$WORK/ext" "$WORK/data" "$WORK/samples"
PATH=$N24/bin:$PATH node "$CS/out/node/entry.js" --config "$WORK/cs.yaml" --extensions-dir "$WORK/ext" \
  --user-data-dir "$WORK/data" --install-extension "$WORK/elastic-vlm.vsix" >/dev/null
if [ -d media/samples ] && [ -n "$(ls -A media/samples 2>/dev/null)" ]; then cp -r media/samples/. "$WORK/samples/"; else node test/e2e/make-images.js "$WORK/samples" >/dev/null; fi
if [ ! -f models/default/config.json ]; then
  echo "[try] note: models/default/ is missing: download a model (Elastic VLM: Download Model) or set elasticVlm.modelPath"
fi
setsid env PATH="$N24/bin:$PATH" node "$CS/lib/vscode/out/server-main.js" --host 127.0.0.1 --port "$PORT" \
  --without-connection-token --accept-server-license-terms --disable-telemetry --telemetry-level off \
  --disable-workspace-trust --extensions-dir "$WORK/ext" --user-data-dir "$WORK/data" --server-data-dir "$WORK/data/server" \
  > "$WORK/server.log" 2>&1 &
SRV=$!
trap 'kill -- -$SRV 2>/dev/null || true; sleep 0.5; rm -rf "$WORK"; echo "[try] stopped, $WORK removed"' EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
echo
echo "  Elastic VLM is running in VS Code at:  http://127.0.0.1:$PORT/?folder=$WORK/samples"
echo "  (loopback only; server log: $WORK/server.log; Ctrl-C to stop)"
echo
wait "$SRV"
