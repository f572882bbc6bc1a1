// Faults through WorkerClient (issue 8): a worker that really runs out of memory while loading, a worker that
// dies on load, a bad model: the client reports each, and the next request works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerClient, WorkerError } from '../../runtime/worker/client.js';
import type { CacheOptions } from '../../runtime/protocol.js';

const root = join(__dirname, '..', '..');
const tiny = join(root, 'test', 'fixtures', 'tiny-model');
const image = join(root, 'test', 'fixtures', 'images', 'diagram.png');
const cache: CacheOptions = { policy: 'elastic', keep: 0.5 };
const work = mkdtempSync(join(tmpdir(), 'evlm-faults-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

const HEAP_MB = 96;

function client(extraArgv: string[] = [], lines?: string[]): WorkerClient {
  return new WorkerClient({
    workerPath: join(root, 'runtime', 'worker', 'main.ts'),
    execArgv: ['--import', 'tsx', ...extraArgv],
    log: lines ? (l) => lines.push(l) : undefined,
  });
}

/**
 * A copy of the tiny model whose tokenizer.json carries an extra 24-million-element array (~48 MB of JSON):
 * JSON.parse in readModelFolder needs far more than HEAP_MB of JS heap for it. Everything else is intact.
 */
function bloatedModel(): string {
  const dir = join(work, 'bloated');
  cpSync(tiny, dir, { recursive: true });
  const tok = readFileSync(join(tiny, 'tokenizer.json'), 'utf8').trimEnd();
  assert.ok(tok.endsWith('}'));
  const pad = '0,'.repeat(24_000_000 - 1) + '0';
  writeFileSync(join(dir, 'tokenizer.json'), `${tok.slice(0, -1)},"x_padding":[${pad}]}`);
  return dir;
}

test(`worker out of memory: a real V8 heap exhaustion (--max-old-space-size=${HEAP_MB}) while loading is reported, the same client then loads and answers`, { timeout: 120_000 }, async () => {
  const bloated = bloatedModel();
  const lines: string[] = [];
  const c = client([`--max-old-space-size=${HEAP_MB}`], lines);
  const exits: WorkerError[] = [];
  c.on('exit', (e: WorkerError) => exits.push(e));
  try {
    // control: under the same heap limit the tiny model loads and answers, so the limit alone kills nothing
    await c.load({ modelDir: tiny, device: 'cpu' });
    const first = c.pid!;
    assert.equal((await c.ask({ image, question: 'What is this?', cache, generate: { maxNewTokens: 3, ignoreEos: true } }).result).generatedTokens, 3);

    const t0 = performance.now();
    await assert.rejects(c.load({ modelDir: bloated, device: 'cpu' }), (e: unknown) => {
      assert.ok(e instanceof WorkerError, String(e));
      assert.equal(e.code, 'worker-exit');
      assert.match(e.message, /^inference worker (killed by SIGABRT|exited with code 134): out of memory/);
      return true;
    });
    const log = lines.join('\n');
    // it really died of a JS heap exhaustion, not of anything else
    assert.match(log, /Reached heap limit|JavaScript heap out of memory/, `worker stderr:\n${log.slice(-1500)}`);
    assert.equal(exits.length, 1);
    assert.equal(c.running, false);
    console.log(`# OOM after ${(performance.now() - t0).toFixed(0)} ms; client error: ${exits[0].message.slice(0, 160)}`);

    // the next request starts a fresh worker; loading the good model again, it answers
    const info = await c.load({ modelDir: tiny, device: 'cpu' });
    assert.equal(info.executionProvider, 'cpu');
    assert.notEqual(c.pid, first);
    const r = await c.ask({ image, question: 'And now?', cache, generate: { maxNewTokens: 4, ignoreEos: true } }).result;
    assert.equal(r.generatedTokens, 4);
  } finally {
    await c.dispose();
  }
  // and a normal client (default heap) loads the very same bloated folder: the failure was the memory, nothing else
  const n = client();
  try {
    await n.load({ modelDir: bloated, device: 'cpu' });
    assert.equal((await n.ask({ image, question: 'q', cache, generate: { maxNewTokens: 2, ignoreEos: true } }).result).generatedTokens, 2);
  } finally {
    await n.dispose();
  }
});

test('a bad model is a bad-input error; the same worker (same pid) then loads a good model and answers', async () => {
  const broken = join(work, 'truncated');
  cpSync(tiny, broken, { recursive: true });
  const dec = join(broken, 'onnx', 'decoder_model_merged.onnx');
  const b = readFileSync(dec);
  writeFileSync(dec, b.subarray(0, b.length >> 1));
  const c = client();
  try {
    await c.load({ modelDir: tiny, device: 'cpu' });
    const pid = c.pid;
    for (const [dir, pattern] of [
      [join(work, 'no-such-model'), /model folder not found/],
      [broken, /not a valid ONNX model|decoder_model_merged/],
    ] as const) {
      await assert.rejects(c.load({ modelDir: dir, device: 'cpu' }),
        (e: unknown) => {
          assert.ok(e instanceof WorkerError);
          assert.deepEqual([e.code, pattern.test(e.message), e.message.includes('\n')], ['bad-input', true, false], e.message);
          return true;
        });
      assert.equal(c.pid, pid, 'the worker survived');
    }
    // after a failed load the old model is gone: an ask retries the last requested model and reports its error
    // (it never answers silently with the previous model)
    await assert.rejects(c.ask({ image, question: 'q', cache, generate: { maxNewTokens: 2 } }).result,
      (e: unknown) => e instanceof WorkerError && e.code === 'bad-input' && /not a valid ONNX model/.test(e.message));
    assert.equal(c.pid, pid);
    await c.load({ modelDir: tiny, device: 'cpu' });
    const r = await c.ask({ image, question: 'What is this?', cache, generate: { maxNewTokens: 3, ignoreEos: true } }).result;
    assert.equal(r.generatedTokens, 3);
    assert.equal(c.pid, pid);
  } finally {
    await c.dispose();
  }
});

test('a worker that exits while loading (SIGKILL during load) is reported; the next load starts a new worker', async () => {
  const c = client();
  try {
    let killedPid = 0;
    c.once('spawn', (pid: number) => {
      killedPid = pid;
    });
    const loading = c.load({ modelDir: tiny, device: 'cpu' });
    // kill it as soon as it says it is loading (the worker's first progress event)
    await new Promise<void>((resolve) => c.once('progress', () => resolve()));
    process.kill(killedPid, 'SIGKILL');
    await assert.rejects(loading, (e: unknown) => e instanceof WorkerError && e.code === 'worker-exit' && /SIGKILL/.test(e.message));
    await c.load({ modelDir: tiny, device: 'cpu' });
    assert.notEqual(c.pid, killedPid);
    assert.equal((await c.ask({ image, question: 'q', cache, generate: { maxNewTokens: 2, ignoreEos: true } }).result).generatedTokens, 2);
  } finally {
    await c.dispose();
  }
});
