// `auto`'s measured probe on a real WebGPU adapter (Mesa's lavapipe in CI, far slower than the CPU provider): the
// first load races WebGPU against the CPU on the default model and keeps the CPU, the answer is cached, and the
// second load takes the cached answer without loading WebGPU at all. `auto` does not try lavapipe on its own
// (runtime/model/sessions.ts hardwareGpuLikely), so the tests name WebGPU as the candidate.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vlm } from '../../runtime/vlm.js';
import { GpuKvStore } from '../../runtime/cache/gpuStore.js';
import { PROBE_FILE } from '../../runtime/model/probeCache.js';
import { describeProbe } from '../../runtime/protocol.js';
import { webgpuGate } from './device.js';

const root = join(__dirname, '..', '..');
const model = join(root, 'models', 'default');
const image = join(root, 'media', 'samples', 'bars.png');
const needWebgpu = webgpuGate();

it('default model: auto races lavapipe WebGPU against the CPU, keeps the CPU, and the second load uses the cached answer', { timeout: 300_000 }, async (t) => {
  if (!needWebgpu(t)) return;
  const cacheDir = mkdtempSync(join(tmpdir(), 'evlm-auto-probe-'));
  const liveBefore = GpuKvStore.liveTensors;
  try {
    const lines1: string[] = [];
    const t1 = performance.now();
    const first = await Vlm.load({ modelDir: model, device: 'auto', cacheDir, gpuCandidates: ['webgpu'], log: (l) => lines1.push(l) });
    const load1 = performance.now() - t1;
    const p1 = first.probe;
    try {
      assert.ok(p1, `a probe ran: ${lines1.join(' | ')}`);
      assert.equal(p1.gpu, 'webgpu');
      assert.equal(p1.cached, false);
      assert.equal(first.provider, 'cpu', describeProbe(first.provider, p1));
      assert.ok(p1.gpuStepMs > p1.cpuStepMs * 1.1, `lavapipe ${p1.gpuStepMs} ms a step, the CPU ${p1.cpuStepMs} ms`);
      assert.ok(p1.probeMs > 0);
      assert.ok(lines1.some((l) => l.startsWith('device probe on webgpu')) && lines1.some((l) => l.startsWith('device probe on cpu')), lines1.join('\n'));
      assert.ok(existsSync(join(cacheDir, PROBE_FILE)));
      assert.equal(GpuKvStore.liveTensors, liveBefore, 'the probe released its device cache');
      // The winner's sessions answer (the loser's were released, not the winner's).
      const r = await first.conversation().ask(image, 'How many bars are there?', { cache: { policy: 'elastic', keep: 0.7 }, generate: { maxNewTokens: 4 } });
      assert.equal(r.executionProvider, 'cpu');
      assert.ok(r.generatedTokens > 0);
    } finally {
      await first.release();
    }

    const lines2: string[] = [];
    const t2 = performance.now();
    const second = await Vlm.load({ modelDir: model, device: 'auto', cacheDir, gpuCandidates: ['webgpu'], log: (l) => lines2.push(l) });
    const load2 = performance.now() - t2;
    try {
      assert.equal(second.provider, 'cpu');
      assert.equal(second.probe?.cached, true);
      assert.equal(second.probe?.probeMs, 0);
      assert.equal(second.probe?.gpuStepMs, p1.gpuStepMs);
      assert.equal(second.probe?.cpuStepMs, p1.cpuStepMs);
      assert.ok(!lines2.some((l) => l.startsWith('device probe on')), `no probe ran: ${lines2.join(' | ')}`);
      assert.ok(lines2.some((l) => l.endsWith('(measured, cached): webgpu not loaded')), lines2.join('\n'));
    } finally {
      await second.release();
    }
    console.log(`# auto probe, default model: ${describeProbe('cpu', p1)}; probe ${p1.probeMs.toFixed(0)} ms; load ${load1.toFixed(0)} ms probing, ${load2.toFixed(0)} ms cached`);
    console.log(`# cache entry: ${readFileSync(join(cacheDir, PROBE_FILE), 'utf8').replace(/\s+/g, ' ')}`);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

it('default model: a device named explicitly never probes', { timeout: 120_000 }, async (t) => {
  if (!needWebgpu(t)) return;
  // Not named "probe": the load's log names the cache folder, and the lines are searched for that word.
  const cacheDir = mkdtempSync(join(tmpdir(), 'evlm-named-device-'));
  try {
    for (const device of ['webgpu', 'cpu'] as const) {
      const lines: string[] = [];
      const vlm = await Vlm.load({ modelDir: model, device, cacheDir, gpuCandidates: ['webgpu'], log: (l) => lines.push(l) });
      try {
        assert.equal(vlm.provider, device);
        assert.equal(vlm.probe, undefined);
        assert.ok(!lines.some((l) => /probe/.test(l)), lines.join('\n'));
      } finally {
        await vlm.release();
      }
    }
    assert.ok(!existsSync(join(cacheDir, PROBE_FILE)));
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
});
