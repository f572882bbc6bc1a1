#!/usr/bin/env bash
# Builds a platform-specific .vsix: npm run package [-- TARGET [OUT.vsix]]   (TARGET default linux-x64)
# The bundles are built minified; .vscodeignore whitelists the runtime files; for another target its platform names
# replace linux-x64 in a temporary copy of the ignore file (the target's native npm packages must be installed,
# e.g. npm install --os=darwin --cpu=arm64).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-${VSCE_TARGET:-linux-x64}}
VERSION=$(node -p 'require("./package.json").version')
OUT=${2:-elastic-vlm-$TARGET-$VERSION.vsix}
case "$TARGET" in
  linux-x64|linux-arm64|darwin-x64|darwin-arm64|win32-x64|win32-arm64|alpine-x64|alpine-arm64) ;;
  *) echo "package.sh: unsupported target $TARGET" >&2; exit 2 ;;
esac
os=${TARGET%-*}; arch=${TARGET#*-}
ort_os=$os; [ "$os" = alpine ] && ort_os=linux
sharp_os=$os; [ "$os" = alpine ] && sharp_os=linuxmusl

IGNORE=.vscodeignore
if [ "$TARGET" != linux-x64 ]; then
  IGNORE=$(mktemp "${TMPDIR:-/tmp}/vscodeignore.XXXX")
  trap 'rm -f "$IGNORE"' EXIT
  sed -e "s#bin/napi-v6/linux/x64#bin/napi-v6/$ort_os/$arch#" -e "s#sharp-linux-x64#sharp-$sharp_os-$arch#" \
      -e "s#sharp-libvips-linux-x64#sharp-libvips-$sharp_os-$arch#" .vscodeignore > "$IGNORE"
fi
for need in "node_modules/onnxruntime-node/bin/napi-v6/$ort_os/$arch" "node_modules/@img/sharp-$sharp_os-$arch"; do
  [ -e "$need" ] || { echo "package.sh: $need is missing: install the $TARGET native packages first" >&2; exit 1; }
done

node esbuild.mjs --minify >/dev/null 2>&1 || { node esbuild.mjs --minify; exit 1; }
npx --no-install vsce package --target "$TARGET" --ignoreFile "$IGNORE" --out "$OUT" \
  --allow-missing-repository --skip-license --no-rewrite-relative-links --allow-star-activation --no-update-package-json 2>&1 | grep -v '^ *$' | tail -3
ls -l "$OUT" | awk '{printf "package.sh: %s, %.1f MB\n", $NF, $5/1048576}'
