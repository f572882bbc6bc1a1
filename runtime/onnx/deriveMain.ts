// The child program of deriveChild.ts: one decoder rewrite (argv[2]: a DeriveJob as JSON), its result or error sent
// back over IPC, then exit, which hands the rewrite's memory back to the system.
import { deriveScoredDecoder, derivePositionsDecoder } from './derive.js';
import type { DeriveJob, DeriveReply } from './deriveChild.js';

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as DeriveJob;
  let reply: DeriveReply;
  try {
    if (job.kind === 'scored') reply = { ok: true, scored: await deriveScoredDecoder(job.source, { cacheDir: job.cacheDir, rewrite: true }) };
    else if (job.kind === 'positions') reply = { ok: true, positions: await derivePositionsDecoder(job.source, { cacheDir: job.cacheDir, rewrite: true }) };
    else reply = { ok: false, name: 'Error', message: `unknown decoder rewrite ${JSON.stringify(job.kind)}` };
  } catch (e) {
    const err = e as Error;
    reply = { ok: false, name: err.name, message: err.message };
  }
  process.send?.(reply, () => process.exit(0));
}

void main();
