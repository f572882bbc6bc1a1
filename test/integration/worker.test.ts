// The worker process through its client: queueing, cancellation, crashes, malformed messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { WorkerClient, WorkerError } from '../../runtime/worker/client.js';
import type { CacheOptions, GenerateOptions } from '../../runtime/protocol.js';

const root = join(__dirname, '..', '..');
const modelDir = join(root, 'test', 'fixtures', 'tiny-model');
const image = join(root, 'test', 'fixtures', 'images', 'diagram.png');
const cache: CacheOptions = { policy: 'elastic', keep: 0.5 };
const long: GenerateOptions = { maxNewTokens: 4000, ignoreEos: true, statsEvery: 1 };

function client(): WorkerClient {
  return new WorkerClient({ workerPath: join(root, 'runtime', 'worker', 'main.ts'), execArgv: ['--import', 'tsx'] });
}

test('worker: ask, then a follow-up, in one long-lived process', async () => {
  const c = client();
  try {
    const info = await c.load({ modelDir, device: 'cpu' });
    assert.equal(info.executionProvider, 'cpu');
    const pid = c.pid;
    const tokens: string[] = [];
    const r = await c.ask({ image, question: 'What is this?', cache, generate: { maxNewTokens: 8, ignoreEos: true } }, { onToken: (t) => tokens.push(t) }).result;
    assert.equal(r.generatedTokens, 8);
    assert.equal(tokens.join('').trim(), r.answer);
    const f = await c.followUp({ question: 'And then?', generate: { maxNewTokens: 4, ignoreEos: true } }).result;
    assert.equal(f.generatedTokens, 4);
    assert.ok(f.cache.tokensSeen > r.cache.tokensSeen);
    assert.equal(c.pid, pid, 'same process');
  } finally {
    await c.dispose();
  }
});

test('worker: cancel stops generation within a step', async () => {
  const c = client();
  try {
    await c.load({ modelDir, device: 'cpu' });
    let n = 0;
    let cancelledAt = -1;
    const job = c.ask({ image, question: 'Describe this image.', cache, generate: long }, {
      onToken: () => {
        n++;
        if (n === 3) {
          cancelledAt = n;
          c.cancel(job.id);
        }
      },
    });
    const r = await job.result;
    assert.equal(r.stopReason, 'cancelled');
    assert.ok(r.generatedTokens < 3 + 5, `stopped after ${r.generatedTokens} tokens (cancel sent at ${cancelledAt})`);
  } finally {
    await c.dispose();
  }
});

test('worker: a cancel of a queued request ends it as one in flight ends: done, cancelled, no tokens', async () => {
  const c = client();
  try {
    await c.load({ modelDir, device: 'cpu' });
    let firstTokens = 0;
    const first = c.ask({ image, question: 'Describe this image.', cache, generate: { maxNewTokens: 40, ignoreEos: true } }, { onToken: () => firstTokens++ });
    const queued = c.ask({ image, question: 'What is this?', cache: { policy: 'h2o', keep: 0.3 }, generate: { maxNewTokens: 8, ignoreEos: true } });
    c.cancel(queued.id); // arrives while the first runs: the second is still in the queue
    const q = await queued.result;
    assert.equal(q.stopReason, 'cancelled');
    assert.equal(q.generatedTokens, 0);
    assert.equal(q.answer, '');
    assert.equal(q.cache.policy, 'h2o');
    assert.equal(q.cache.tokensSeen, 0);
    const r = await first.result;
    assert.equal(r.stopReason, 'length');
    assert.equal(r.generatedTokens, 40);
    assert.ok(firstTokens > 0);
  } finally {
    await c.dispose();
  }
});

test('worker: SIGKILL mid-generation is reported, and the next ask starts a fresh worker that answers', async () => {
  const c = client();
  try {
    await c.load({ modelDir, device: 'cpu' });
    const first = c.pid!;
    let killed = false;
    const job = c.ask({ image, question: 'Describe this image.', cache, generate: long }, {
      onToken: () => {
        if (!killed) {
          killed = true;
          process.kill(first, 'SIGKILL');
        }
      },
    });
    await assert.rejects(job.result, (e: unknown) => e instanceof WorkerError && e.code === 'worker-exit' && /SIGKILL/.test(e.message));
    const r = await c.ask({ image, question: 'What is this?', cache, generate: { maxNewTokens: 4, ignoreEos: true } }).result;
    assert.equal(r.generatedTokens, 4);
    assert.notEqual(c.pid, first);
  } finally {
    await c.dispose();
  }
});

test('worker: a malformed message gets an error event and the worker lives on', async () => {
  const c = client();
  try {
    await c.load({ modelDir, device: 'cpu' });
    const pid = c.pid;
    const child = (c as unknown as { child: import('node:child_process').ChildProcess }).child;
    const reply = new Promise<unknown>((resolve) => child.once('message', resolve));
    child.send({ type: 'explode', id: 999 });
    const ev = (await reply) as { type: string; id: number; code: string; message: string };
    assert.deepEqual([ev.type, ev.id, ev.code], ['error', 999, 'bad-input']);
    assert.match(ev.message, /unknown request type/);
    child.send('not even an object');
    const r = await c.ask({ image, question: 'Still there?', cache, generate: { maxNewTokens: 2, ignoreEos: true } }).result;
    assert.equal(r.generatedTokens, 2);
    assert.equal(c.pid, pid);
  } finally {
    await c.dispose();
  }
});

test('worker: two asks at once run in arrival order (the second waits for the first)', async () => {
  const c = client();
  try {
    await c.load({ modelDir, device: 'cpu' });
    const order: number[] = [];
    const a = c.ask({ image, question: 'First?', cache, generate: { maxNewTokens: 6, ignoreEos: true } });
    const b = c.ask({ image, question: 'Second?', cache, generate: { maxNewTokens: 6, ignoreEos: true } });
    a.result.then(() => order.push(a.id));
    b.result.then(() => order.push(b.id));
    const [ra, rb] = await Promise.all([a.result, b.result]);
    assert.equal(ra.generatedTokens, 6);
    assert.equal(rb.generatedTokens, 6);
    assert.deepEqual(order, [a.id, b.id]);
  } finally {
    await c.dispose();
  }
});

test('worker: bad input (missing image) is a bad-input error and the worker survives', async () => {
  const c = client();
  try {
    await c.load({ modelDir, device: 'cpu' });
    await assert.rejects(c.ask({ image: join(root, 'nope.png'), question: 'q', cache, generate: { maxNewTokens: 2 } }).result,
      (e: unknown) => e instanceof WorkerError && e.code === 'bad-input' && /not found/.test(e.message));
    const r = await c.ask({ image, question: 'q', cache, generate: { maxNewTokens: 2, ignoreEos: true } }).result;
    assert.equal(r.generatedTokens, 2);
  } finally {
    await c.dispose();
  }
});
