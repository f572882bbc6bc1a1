// Bundles the extension (Node, CommonJS), the inference worker (Node, CommonJS) and the panel's webview (browser
// IIFE) into dist/. Native modules stay external and ship in node_modules (see .vscodeignore).
//   node esbuild.mjs [--watch] [--minify]
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const minify = process.argv.includes('--minify');
const external = ['vscode', 'onnxruntime-node', 'sharp'];
const node = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', sourcemap: minify ? false : 'linked', minify, external, logLevel: 'info' };

const builds = [
  { ...node, entryPoints: ['extension/extension.ts'], outfile: 'dist/extension.js' },
  { ...node, entryPoints: ['runtime/worker/main.ts'], outfile: 'dist/worker.js' },
  // The decoder rewrite's child process (runtime/onnx/deriveChild.ts), found beside worker.js.
  { ...node, entryPoints: ['runtime/onnx/deriveMain.ts'], outfile: 'dist/deriveMain.js' },
  {
    bundle: true, platform: 'browser', format: 'iife', target: 'chrome114', sourcemap: minify ? false : 'linked', minify, logLevel: 'info',
    entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js',
  },
];

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b))).catch(() => process.exit(1));
}
