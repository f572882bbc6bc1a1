// Builds look-alike SmolVLM folders (tools/lookalike) at test time, cached outside the checkout by a hash of the
// generator's sources and arguments, so a second run reuses them and nothing large is ever committed.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const tools = join(root, 'tools', 'lookalike');

export function lookalikeCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'elastic-vlm', 'lookalike');
}

/** The folder `npm run lookalike -- ...args` writes, built once per generator version and arguments. */
export function lookalike(args: string[]): string {
  const h = createHash('sha256');
  for (const f of readdirSync(tools).filter((f) => /\.(py|sh)$/.test(f)).sort()) h.update(f).update(readFileSync(join(tools, f)));
  h.update(readFileSync(join(root, 'models', 'default', 'tokenizer_config.json')));
  h.update(JSON.stringify(args));
  const dir = join(lookalikeCacheDir(), h.digest('hex').slice(0, 16));
  if (existsSync(join(dir, 'lookalike.json'))) return dir;
  mkdirSync(lookalikeCacheDir(), { recursive: true });
  const tmp = `${dir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  execFileSync('bash', [join(tools, 'run.sh'), ...args, '--out', tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}
