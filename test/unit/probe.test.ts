// `auto`'s measured probe: the rule (pickFaster, with its margin), the alternating timer, and chooseProvider's
// paths through it with hand-made sessions and step times (no onnxruntime session is built here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alternate, median, pickFaster, probeContext, PROBE_TEXT_TOKENS, type DecodeRun } from '../../runtime/model/probe.js';
import { chooseProvider, type AutoRace, type ChooseOptions, type StepTimes } from '../../runtime/model/sessions.js';
import { BadInputError } from '../../runtime/errors.js';
import { describeProbe, type Provider } from '../../runtime/protocol.js';
import { deviceReason } from '../../extension/format.js';

test('pickFaster: the GPU wins only when at least 10 % faster than the CPU', () => {
  assert.equal(pickFaster({ gpu: 'webgpu', gpuStepMs: 9.8, cpuStepMs: 2.1 }), 'cpu');
  assert.equal(pickFaster({ gpu: 'webgpu', gpuStepMs: 13.7, cpuStepMs: 47.3 }), 'webgpu');
  assert.equal(pickFaster({ gpu: 'cuda', gpuStepMs: 8.9, cpuStepMs: 10 }), 'cuda', '11 % faster');
  assert.equal(pickFaster({ gpu: 'cuda', gpuStepMs: 9.5, cpuStepMs: 10 }), 'cpu', '5 % faster is noise');
  assert.equal(pickFaster({ gpu: 'cuda', gpuStepMs: 10, cpuStepMs: 10 }), 'cpu', 'a tie keeps the CPU');
  assert.equal(pickFaster({ gpu: 'cuda', gpuStepMs: 9.5, cpuStepMs: 10 }, 0.04), 'cuda', 'a smaller margin');
  assert.equal(pickFaster({ gpu: 'cuda', gpuStepMs: 9, cpuStepMs: 10 }, 0), 'cuda');
});

test('pickFaster: a provider without a usable time loses', () => {
  assert.equal(pickFaster({ gpu: 'webgpu', gpuStepMs: NaN, cpuStepMs: 50 }), 'cpu');
  assert.equal(pickFaster({ gpu: 'webgpu', gpuStepMs: 0, cpuStepMs: 50 }), 'cpu');
  assert.equal(pickFaster({ gpu: 'webgpu', gpuStepMs: Infinity, cpuStepMs: 50 }), 'cpu');
  assert.equal(pickFaster({ gpu: 'webgpu', gpuStepMs: 30, cpuStepMs: NaN }), 'webgpu');
  assert.equal(pickFaster({ gpu: 'webgpu', gpuStepMs: 30, cpuStepMs: -1 }), 'webgpu');
});

test('probeContext: a full-detail square image and a short question (the lengths users decode at)', () => {
  // the embedded model: 512 / 256 = 2 tiles a side, 4 + the global image, 64 tokens each
  assert.equal(probeContext({ longestEdge: 512, tileSize: 256, doImageSplitting: true }, 64), 5 * 64 + PROBE_TEXT_TOKENS);
  // SmolVLM-256M: 2048 / 512 = 4 a side: 17 tiles of 64 tokens
  assert.equal(probeContext({ longestEdge: 2048, tileSize: 512, doImageSplitting: true }, 64), 17 * 64 + PROBE_TEXT_TOKENS);
  // a longest edge that is not a multiple of the tile rounds up; no splitting or one tile: the global image alone
  assert.equal(probeContext({ longestEdge: 1100, tileSize: 512, doImageSplitting: true }, 81), 10 * 81 + PROBE_TEXT_TOKENS);
  assert.equal(probeContext({ longestEdge: 2048, tileSize: 512, doImageSplitting: false }, 64), 64 + PROBE_TEXT_TOKENS);
  assert.equal(probeContext({ longestEdge: 512, tileSize: 512, doImageSplitting: true }, 64), 64 + PROBE_TEXT_TOKENS);
});

test('median', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

/** A fake decode whose steps take the given times in turn (the last repeats), recording the order of the calls. */
function fakeRun(name: string, ms: number[], order: string[], failAt = -1): DecodeRun & { disposed: boolean } {
  let i = 0;
  const run = {
    disposed: false,
    step: async () => {
      order.push(name);
      if (i === failAt) throw new Error(`${name} lost its device\nstack`);
      return ms[Math.min(i++, ms.length - 1)];
    },
    dispose: () => void (run.disposed = true),
  };
  return run;
}

test('alternate: steps the runs in turn, skips the warm-up, takes medians, disposes every run', async () => {
  const order: string[] = [];
  const a = fakeRun('a', [500, 400, 3, 5, 4], order);
  const b = fakeRun('b', [90, 1, 2, 9, 2], order);
  const r = await alternate([a, b], { prefillTokens: 1, warmupSteps: 2, steps: 3 });
  assert.deepEqual(order, ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b']);
  assert.deepEqual(r, [{ stepMs: 4 }, { stepMs: 2 }]);
  assert.ok(a.disposed && b.disposed);
});

test('alternate: a run whose step fails stops and reports why; the other goes on', async () => {
  const order: string[] = [];
  const a = fakeRun('a', [1], order, 2);
  const b = fakeRun('b', [7], order);
  const r = await alternate([a, b], { prefillTokens: 1, warmupSteps: 1, steps: 3 });
  assert.deepEqual(order, ['a', 'b', 'a', 'b', 'a', 'b', 'b']);
  assert.ok(Number.isNaN(r[0].stepMs));
  assert.equal(r[0].error, 'a lost its device');
  assert.deepEqual(r[1], { stepMs: 7 });
  assert.ok(a.disposed && b.disposed);
});

interface Fake {
  p: Provider;
  released: boolean;
}

/** chooseProvider's options over fake sessions: `ms` is each provider's step time; failures by provider. */
function harness(ms: Partial<Record<Provider, number>>, opt: { cached?: StepTimes | null; buildFails?: Provider[]; stepFails?: Provider[] } = {}) {
  const built: Fake[] = [];
  const saved: StepTimes[] = [];
  const lookedUp: Provider[] = [];
  const lines: string[] = [];
  const race: AutoRace<Fake> = {
    lookup: async (gpu) => (lookedUp.push(gpu), opt.cached ?? null),
    start: async (v) => fakeRun(v.p, [ms[v.p] ?? 1], [], opt.stepFails?.includes(v.p) ? 1 : -1),
    workload: { prefillTokens: 1, warmupSteps: 1, steps: 3 },
    release: async (v) => void (v.released = true),
    save: async (_gpu, m) => void saved.push(m),
  };
  const o: ChooseOptions<Fake> = {
    build: async (p) => {
      if (opt.buildFails?.includes(p)) throw new Error(`no ${p} adapter\nstack`);
      const v = { p, released: false };
      built.push(v);
      return v;
    },
    log: (l) => lines.push(l),
    race,
    candidates: ['webgpu'],
  };
  return { o, built, saved, lookedUp, lines };
}

test('auto: a slower GPU loses the race; its sessions are released and the race is cached', async () => {
  const h = harness({ webgpu: 9.8, cpu: 2.1 });
  const { choice, value } = await chooseProvider('auto', h.o);
  assert.equal(choice.provider, 'cpu');
  assert.equal(value.p, 'cpu');
  assert.equal(value.released, false);
  assert.deepEqual(h.built.map((v) => [v.p, v.released]), [['webgpu', true], ['cpu', false]]);
  assert.equal(choice.probe?.gpu, 'webgpu');
  assert.equal(choice.probe?.gpuStepMs, 9.8);
  assert.equal(choice.probe?.cpuStepMs, 2.1);
  assert.equal(choice.probe?.cached, false);
  assert.ok(choice.probe!.probeMs >= 0);
  assert.deepEqual(h.saved, [{ gpuStepMs: 9.8, cpuStepMs: 2.1 }]);
  assert.equal(choice.fallbackReason, undefined);
  assert.ok(h.lines.some((l) => l.startsWith('auto chose the CPU: 2.1 ms a step against 9.8 ms on WebGPU (measured); the probe took')), h.lines.join('\n'));
});

test('auto: a GPU 10 % faster or more wins and the CPU sessions are released', async () => {
  const h = harness({ webgpu: 13.7, cpu: 47.3 });
  const { choice, value } = await chooseProvider('auto', h.o);
  assert.equal(choice.provider, 'webgpu');
  assert.equal(value.p, 'webgpu');
  assert.deepEqual(h.built.map((v) => [v.p, v.released]), [['webgpu', false], ['cpu', true]]);
  assert.equal(h.saved.length, 1);
});

test('auto: a GPU only a little faster keeps the CPU', async () => {
  const h = harness({ webgpu: 9.6, cpu: 10 });
  const { choice } = await chooseProvider('auto', h.o);
  assert.equal(choice.provider, 'cpu');
  assert.match(describeProbe(choice.provider, choice.probe!), /^auto chose the CPU: 10\.0 ms a step against 9\.6 ms on WebGPU, not 10 % faster \(measured\)$/);
});

test('auto: a cached answer decides without a race; a cached CPU never loads the GPU', async () => {
  const cpuWins = harness({}, { cached: { gpuStepMs: 9.8, cpuStepMs: 2.1 } });
  const a = await chooseProvider('auto', cpuWins.o);
  assert.equal(a.choice.provider, 'cpu');
  assert.deepEqual(cpuWins.built.map((v) => v.p), ['cpu']);
  assert.equal(a.choice.probe?.cached, true);
  assert.equal(a.choice.probe?.probeMs, 0);
  assert.deepEqual(cpuWins.saved, []);
  assert.equal(describeProbe('cpu', a.choice.probe!), 'auto chose the CPU: 2.1 ms a step against 9.8 ms on WebGPU (measured, cached)');

  const gpuWins = harness({}, { cached: { gpuStepMs: 2, cpuStepMs: 9 } });
  const b = await chooseProvider('auto', gpuWins.o);
  assert.equal(b.choice.provider, 'webgpu');
  assert.deepEqual(gpuWins.built.map((v) => v.p), ['webgpu'], 'no CPU sessions built');
  assert.equal(b.choice.probe?.cached, true);
});

test('auto: a cached CPU that cannot load now falls back to the GPU', async () => {
  const h = harness({}, { cached: { gpuStepMs: 9.8, cpuStepMs: 2.1 }, buildFails: ['cpu'] });
  const { choice } = await chooseProvider('auto', h.o);
  assert.equal(choice.provider, 'webgpu');
  assert.deepEqual(h.built.map((v) => v.p), ['webgpu']);
});

test('a named device never probes and never reads the cache', async () => {
  for (const device of ['cpu', 'webgpu'] as const) {
    const h = harness({ webgpu: 1, cpu: 100 });
    const { choice } = await chooseProvider(device, h.o);
    assert.equal(choice.provider, device);
    assert.equal(choice.probe, undefined);
    assert.deepEqual(h.lookedUp, []);
    assert.deepEqual(h.built.map((v) => v.p), [device]);
  }
});

test('a named device that fails is one line of bad input', async () => {
  const h = harness({}, { buildFails: ['webgpu'] });
  await assert.rejects(chooseProvider('webgpu', h.o), (e: Error) => e instanceof BadInputError && e.message === 'device webgpu is not available here: no webgpu adapter');
});

test('auto: a GPU that does not load falls back to the CPU with the reason and no probe', async () => {
  const h = harness({ cpu: 2 }, { buildFails: ['webgpu'] });
  const { choice } = await chooseProvider('auto', h.o);
  assert.equal(choice.provider, 'cpu');
  assert.equal(choice.probe, undefined);
  assert.equal(choice.fallbackReason, 'webgpu: no webgpu adapter');
  assert.equal(deviceReason({ executionProvider: 'cpu', fallbackReason: choice.fallbackReason }), 'auto fell back to the CPU: webgpu: no webgpu adapter');
});

test('auto: a GPU whose decode fails loses to the CPU; nothing is cached', async () => {
  const h = harness({ webgpu: 1, cpu: 2 }, { stepFails: ['webgpu'] });
  const { choice, value } = await chooseProvider('auto', h.o);
  assert.equal(choice.provider, 'cpu');
  assert.equal(value.released, false);
  assert.match(choice.fallbackReason ?? '', /^webgpu: the probe's decode failed \(webgpu lost its device\)$/);
  assert.deepEqual(h.saved, []);
  assert.ok(h.built.find((v) => v.p === 'webgpu')!.released);
});

test('auto: a CPU that cannot load the model keeps the GPU, uncached', async () => {
  const h = harness({ webgpu: 30 }, { buildFails: ['cpu'] });
  const { choice, value } = await chooseProvider('auto', h.o);
  assert.equal(choice.provider, 'webgpu');
  assert.equal(value.released, false);
  assert.equal(choice.probe?.cpuError, 'no cpu adapter');
  assert.deepEqual(h.saved, []);
  assert.equal(describeProbe('webgpu', choice.probe!), 'auto chose WebGPU: 30.0 ms a step; the CPU could not run the model (no cpu adapter)');
});

test('auto: the skip rule comes first (a fused decoder on WebGPU): no cache look-up, no race', async () => {
  const h = harness({ webgpu: 1, cpu: 50 });
  const { choice } = await chooseProvider('auto', { ...h.o, skipForAuto: (p) => (p === 'webgpu' ? 'no scores there' : null) });
  assert.equal(choice.provider, 'cpu');
  assert.equal(choice.probe, undefined);
  assert.equal(choice.fallbackReason, 'webgpu: no scores there');
  assert.deepEqual(h.lookedUp, []);
  assert.deepEqual(h.built.map((v) => v.p), ['cpu']);
});

test('deviceReason: the probe in words, for the status bar', () => {
  const probe = { gpu: 'webgpu' as const, gpuStepMs: 9.8, cpuStepMs: 2.1, cached: true, probeMs: 0 };
  assert.equal(deviceReason({ executionProvider: 'cpu', probe }), 'auto chose the CPU: 2.1 ms a step against 9.8 ms on WebGPU (measured, cached)');
  assert.equal(deviceReason({ executionProvider: 'webgpu', probe: { ...probe, gpuStepMs: 0.42, cpuStepMs: 3, cached: false } }),
    'auto chose WebGPU: 0.42 ms a step against 3.0 ms on the CPU (measured)');
  assert.equal(deviceReason({ executionProvider: 'cpu' }), null);
});
