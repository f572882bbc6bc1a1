// No network from the worker, and no ONNX Runtime telemetry: after a model load and a question, the worker process
// holds no TCP or UDP socket (its only sockets are the IPC channel's), and nothing was written where ONNX Runtime
// keeps its telemetry database (~/.cache/Microsoft).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerClient } from '../../runtime/worker/client.js';

const root = join(__dirname, '..', '..');
const tiny = join(root, 'test', 'fixtures', 'tiny-model');
const image = join(root, 'test', 'fixtures', 'images', 'diagram.png');

/** Inodes of the process's sockets, and of the TCP/UDP sockets in its network namespace. */
function sockets(pid: number): { open: Set<string>; inet: Set<string> } {
  const open = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) open.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  const inet = new Set<string>();
  for (const t of ['tcp', 'tcp6', 'udp', 'udp6']) {
    const lines = existsSync(`/proc/${pid}/net/${t}`) ? readFileSync(`/proc/${pid}/net/${t}`, 'utf8').trim().split('\n').slice(1) : [];
    for (const l of lines) inet.add(l.trim().split(/\s+/)[9]);
  }
  return { open, inet };
}

test('the worker opens no TCP/UDP socket and writes no ONNX Runtime telemetry', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'evlm-home-'));
  const c = new WorkerClient({
    workerPath: join(root, 'runtime', 'worker', 'main.ts'),
    execArgv: ['--import', 'tsx'],
    env: { HOME: home, XDG_CACHE_HOME: join(home, '.cache') },
  });
  try {
    await c.load({ modelDir: tiny, device: 'cpu' });
    const r = await c.ask({ image, question: 'What is this?', cache: { policy: 'elastic', keep: 0.5 }, generate: { maxNewTokens: 4, ignoreEos: true } }).result;
    assert.equal(r.generatedTokens, 4);
    const { open, inet } = sockets(c.pid!);
    assert.ok(open.size >= 1, 'the IPC channel is a socket');
    const net = [...open].filter((i) => inet.has(i));
    assert.deepEqual(net, [], 'TCP/UDP sockets held by the worker');
    assert.ok(existsSync(join(home, '.cache', 'elastic-vlm')), 'the worker used the temporary home (derived decoder cache)');
    assert.equal(existsSync(join(home, '.cache', 'Microsoft')), false, 'ONNX Runtime telemetry database written');
  } finally {
    await c.dispose();
    rmSync(home, { recursive: true, force: true });
  }
});
