#!/usr/bin/env bash
# Builds what a run on the lent GPU machine needs and cannot download there (it has no Node and no network):
#   .gl/                 Debian's Vulkan loader + GL dispatch libraries (.debs, unpacked there with dpkg -x)
#   .devcarry/carry.tar.xz  a stripped Node binary, the linux-x64 onnxruntime-node + sharp files, the bundled JS
# Both folders are git-ignored; name them in the device run's `carry`.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gl .devcarry
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists'
  mkdir -p /tmp/amd64-lists/partial
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
fi
stage=$(mktemp -d)
cp "$(command -v node)" "$stage/node" && strip "$stage/node"
nm=$stage/nm && mkdir -p "$nm/onnxruntime-node/bin/napi-v6/linux" "$nm/@img"
cp -r node_modules/onnxruntime-node/{package.json,dist} "$nm/onnxruntime-node/"
cp -r node_modules/onnxruntime-node/bin/napi-v6/linux/x64 "$nm/onnxruntime-node/bin/napi-v6/linux/"
cp -r node_modules/onnxruntime-common "$nm/"
cp -r node_modules/sharp node_modules/detect-libc node_modules/semver "$nm/"
cp -r node_modules/@img/sharp-linux-x64 node_modules/@img/sharp-libvips-linux-x64 node_modules/@img/colour "$nm/@img/" 2>/dev/null || true
mkdir -p "$stage/app"
npx esbuild runtime/cli/ask.ts runtime/cli/eval.ts bench/scenarios.ts scripts/device/lookalike-ask.ts scripts/device/probe-auto.ts --bundle --platform=node --format=cjs --target=node20 \
  --external:onnxruntime-node --external:sharp --outdir="$stage/app" --log-level=warning
# The decoder rewrite's child program, where runtime/paths.ts deriveEntry looks for it (app/, above every bundle).
npx esbuild runtime/onnx/deriveMain.ts --bundle --platform=node --format=cjs --target=node20 --outfile="$stage/app/deriveMain.js" --log-level=warning
# The benchmark and its peer (transformers.js, bundled; it drives the same onnxruntime-node): beside the pieces
# above, where bench.ts runs its children from (`npm run bench` without tsx).
npx esbuild bench/bench.ts bench/peer.ts bench/prefill.ts --bundle --platform=node --format=cjs --target=node20 \
  --external:onnxruntime-node --external:sharp --external:onnxruntime-web --outdir="$stage/app/bench" --log-level=warning
tar -C "$stage" -cJf .devcarry/carry.tar.xz .
rm -rf "$stage"
ls -la .devcarry/carry.tar.xz .gl
