// Checks a packaged .vsix: size, the manifest's TargetPlatform and what is (not) inside.
// usage: node vsix-check.js FILE.vsix TARGET   (prints "vsix: N passed, N failed")
'use strict';
const fs = require('fs');
const { execFileSync } = require('child_process');
const [file, target = 'linux-x64'] = process.argv.slice(2);
const maxMb = Number(process.env.E2E_VSIX_MAX_MB || 400);
let passed = 0, failed = 0;
const check = (name, ok, detail = '') => {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
};
const size = fs.statSync(file).size;
const list = execFileSync('unzip', ['-Z1', file], { encoding: 'utf8' }).trim().split('\n');
const manifest = execFileSync('unzip', ['-p', file, 'extension.vsixmanifest'], { encoding: 'utf8' });
const hasModel = list.some((f) => f.startsWith('extension/models/default/'));
check(`size under ${maxMb} MB`, size < maxMb * 1048576, `${(size / 1048576).toFixed(1)} MB, ${list.length} files${hasModel ? ', with the embedded model' : ', no embedded model yet'}`);
const tp = /TargetPlatform="([^"]+)"/.exec(manifest);
check(`manifest TargetPlatform is ${target}`, tp && tp[1] === target, tp ? tp[1] : 'missing');
for (const f of ['extension/package.json', 'extension/dist/extension.js', 'extension/dist/webview.js', 'extension/media/panel.css',
  'extension/node_modules/onnxruntime-node/dist/index.js', 'extension/node_modules/onnxruntime-common/dist/cjs/index.js',
  'extension/node_modules/sharp/dist/index.cjs']) {
  check(`contains ${f}`, list.includes(f));
}
check('contains dist/worker.js', list.includes('extension/dist/worker.js'), list.includes('extension/dist/worker.js') ? '' : 'runtime/worker/main.ts not built');
const [os, arch] = target.split('-');
const ortDir = `extension/node_modules/onnxruntime-node/bin/napi-v6/${os === 'alpine' ? 'linux' : os}/${arch}/`;
check(`onnxruntime binaries for ${target} only`, list.some((f) => f.startsWith(ortDir)) && !list.some((f) => f.includes('/bin/napi-v6/') && !f.startsWith(ortDir)));
check('no sources, tests, maps or dev tools', !list.some((f) => /\.(ts|map)$/.test(f) && !f.endsWith('.d.ts') || /^extension\/(test|extension|webview|runtime|scripts|train|bench|docs)\//.test(f) || f.includes('node_modules/.bin/') || /node_modules\/(typescript|esbuild|@vscode\/vsce|mocha|playwright-core|tsx)\//.test(f)));
console.log(`vsix: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
