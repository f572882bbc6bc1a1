// Where the project's own files are, whether running from source (tsx) or from the bundle in dist/.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** The package root: the nearest folder above this file that holds package.json and models/. */
export function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'models'))) return dir;
    dir = dirname(dir);
  }
  return resolve(__dirname, '..');
}

/** The embedded default model. */
export function defaultModelDir(): string {
  return join(packageRoot(), 'models', 'default');
}

/** The worker entry: the bundle when built, else the TypeScript source run through tsx. */
export function workerEntry(): { path: string; execArgv: string[] } {
  const bundled = join(packageRoot(), 'dist', 'worker.js');
  const source = join(packageRoot(), 'runtime', 'worker', 'main.ts');
  if (__filename.endsWith('.ts') || !existsSync(bundled)) return { path: source, execArgv: ['--import', 'tsx'] };
  return { path: bundled, execArgv: [] };
}

/**
 * The decoder rewrite's child program (onnx/deriveChild.ts): deriveMain.js beside the running bundle or up to two
 * folders above it (dist/; a device carry's app/, whose bundles sit in app/bench/ and app/runtime/cli/), else the
 * TypeScript source through tsx.
 */
export function deriveEntry(): { path: string; execArgv: string[] } {
  if (!__filename.endsWith('.ts')) {
    for (let dir = __dirname, i = 0; i < 3; i++, dir = dirname(dir)) {
      const bundled = join(dir, 'deriveMain.js');
      if (existsSync(bundled)) return { path: bundled, execArgv: [] };
    }
  }
  return { path: join(packageRoot(), 'runtime', 'onnx', 'deriveMain.ts'), execArgv: ['--import', 'tsx'] };
}

/** Where derived decoders (and `auto`'s device probe) are kept: $XDG_CACHE_HOME/elastic-vlm/derived or ~/.cache/elastic-vlm/derived. */
export function defaultDerivedCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'elastic-vlm', 'derived');
}
