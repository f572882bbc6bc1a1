// Runs `npm run ask`'s entry (runtime/cli/ask.ts) in a child process, as a user's shell would.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const root = join(__dirname, '..', '..');

/** Exit code, stdout and stderr of `npm run ask -- ...args`. */
export function ask(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'runtime', 'cli', 'ask.ts'), ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
