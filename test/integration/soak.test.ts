// Soak (issue 8): 100 rounds of an ask and a follow-up in ONE worker process (elastic policy, tiny model, a few
// tokens each). The worker's RSS (VmRSS from /proc/<pid>/status) after the 100th round stays within 10% of its
// RSS after the 10th. SOAK_ROUNDS overrides the round count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkerClient } from '../../runtime/worker/client.js';
import type { CacheOptions } from '../../runtime/protocol.js';

const root = join(__dirname, '..', '..');
// The embedded default model: a real size (its warm-up is a small part of its footprint, unlike a 2 MB toy's).
const tiny = join(root, 'models', 'default');
const images = ['diagram.png', 'gradient.png', 'exact.png'].map((f) => join(root, 'test', 'fixtures', 'images', f));
const cache: CacheOptions = { policy: 'elastic', keep: 0.5 };
const ROUNDS = Number(process.env.SOAK_ROUNDS ?? 100);

/** Resident set size of a process in KiB, from /proc (Linux). */
function vmRssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

test(`soak: ${ROUNDS} asks + follow-ups in one worker, RSS after the last within 10% of after the 10th`, { timeout: 240_000 }, async (t) => {
  if (process.platform !== 'linux') {
    t.skip('reads /proc/<pid>/status');
    return;
  }
  const c = new WorkerClient({ workerPath: join(root, 'runtime', 'worker', 'main.ts'), execArgv: ['--import', 'tsx'] });
  try {
    await c.load({ modelDir: tiny, device: 'cpu' });
    const pid = c.pid!;
    const rss: number[] = [];
    const t0 = performance.now();
    let tokens = 0;
    for (let i = 1; i <= ROUNDS; i++) {
      const a = await c.ask({
        image: images[i % images.length],
        question: `Round ${i}: what is in the picture?`,
        cache,
        generate: { maxNewTokens: 4 + (i % 3), ignoreEos: true },
      }).result;
      assert.equal(a.generatedTokens, 4 + (i % 3));
      assert.equal(a.cache.policy, 'elastic');
      const f = await c.followUp({ question: `And what colour is it (${i})?`, generate: { maxNewTokens: 3, ignoreEos: true } }).result;
      assert.equal(f.generatedTokens, 3);
      assert.ok(f.cache.tokensSeen > a.cache.tokensSeen);
      // elastic keeps the cache at its budget: the follow-up's cache is not the sum of both turns
      assert.ok(f.cache.perLayerLength[0] <= f.cache.budget, JSON.stringify(f.cache));
      tokens += a.generatedTokens + f.generatedTokens;
      assert.equal(c.pid, pid, `round ${i}: still the same worker`);
      rss.push(vmRssKiB(pid));
    }
    const secs = (performance.now() - t0) / 1000;
    if (process.env.SOAK_TRACE) console.log(`# VmRSS MiB every 25 rounds: ${rss.filter((_, k) => k % 25 === 24).map((v) => (v / 1024).toFixed(0)).join(' ')}`);
    const at10 = rss[Math.min(9, rss.length - 1)];
    const last = rss[rss.length - 1];
    const growth = (last - at10) / at10;
    const mib = (k: number) => (k / 1024).toFixed(1);
    console.log(`# soak: ${ROUNDS} rounds (${2 * ROUNDS} requests, ${tokens} tokens) in ${secs.toFixed(1)} s; worker VmRSS after round 1 ${mib(rss[0])} MiB, ` +
      `10 ${mib(at10)} MiB, ${ROUNDS} ${mib(last)} MiB (${(growth * 100).toFixed(1)}%), max ${mib(Math.max(...rss))} MiB`);
    assert.ok(growth <= 0.1, `worker RSS grew ${(growth * 100).toFixed(1)}% from round 10 to round ${ROUNDS}`);
  } finally {
    await c.dispose();
  }
});
