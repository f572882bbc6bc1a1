// The model download against a hub-shaped server on 127.0.0.1: plan from the tree API, Range resume after an
// interrupted transfer, checksum mismatch -> clean failure, nothing half-installed, cancel + resume on the next run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startFakeHub, smolvlmLikeFiles } from '../e2e/fakeHub.js';
import { downloadModel, planModelDownload, listInstalledModels, DownloadError, MANIFEST, modelFolderName } from '../../extension/downloadCore.js';

const REPO = 'HuggingFaceTB/SmolVLM-256M-Instruct';
const tmp = () => mkdtempSync(path.join(tmpdir(), 'evlm-dl-'));

test('plans the files of one dtype with sizes and checksums from the tree API', async () => {
  const hub = await startFakeHub({ repo: REPO, files: smolvlmLikeFiles(1000) });
  try {
    const plan = await planModelDownload({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: tmp() });
    const paths = plan.map((f) => f.path).sort();
    assert.deepEqual(paths, ['config.json', 'generation_config.json', 'onnx/decoder_model_merged_q4.onnx', 'onnx/embed_tokens_q4.onnx',
      'onnx/vision_encoder_q4.onnx', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json']);
    for (const f of plan) assert.ok(f.path.endsWith('.onnx') ? /^[0-9a-f]{64}$/.test(f.sha256!) : /^[0-9a-f]{40}$/.test(f.gitSha1!));
    await assert.rejects(planModelDownload({ endpoint: hub.url, repo: REPO, dtype: 'int8', destRoot: tmp() }), /no onnx\/vision_encoder_int8\.onnx/);
  } finally {
    await hub.close();
  }
});

test('downloads, verifies and installs atomically; the model is listed', async () => {
  const files = smolvlmLikeFiles();
  const hub = await startFakeHub({ repo: REPO, files });
  const root = tmp();
  try {
    const progress: number[] = [];
    const { dir, manifest } = await downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root, onProgress: (p) => progress.push(p.done) });
    assert.equal(dir, path.join(root, modelFolderName(REPO, 'q4')));
    for (const f of manifest.files) assert.deepEqual(readFileSync(path.join(dir, f.path)), files[f.path]);
    assert.ok(existsSync(path.join(dir, MANIFEST)));
    assert.deepEqual(readdirSync(root), [path.basename(dir)], 'no staging folder left');
    assert.ok(progress.length > 3 && progress[progress.length - 1] === manifest.files.reduce((a, f) => a + f.size, 0));
    const listed = await listInstalledModels(root);
    assert.equal(listed.length, 1);
    assert.equal(listed[0].manifest.dtype, 'q4');
    // the resolve URLs redirected to the CDN path and were followed
    assert.ok(hub.requests.some((r) => r.status === 302) && hub.requests.some((r) => r.path.startsWith('/cdn/')));
  } finally {
    await hub.close();
  }
});

test('an interrupted transfer resumes with a Range request and the file checks out', async () => {
  const files = smolvlmLikeFiles(200 * 1024);
  const hub = await startFakeHub({ repo: REPO, files });
  const root = tmp();
  try {
    hub.cut('onnx/decoder_model_merged_q4.onnx', 50_000, 2);
    const lines: string[] = [];
    const { dir } = await downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root, log: (l) => lines.push(l) });
    assert.deepEqual(readFileSync(path.join(dir, 'onnx/decoder_model_merged_q4.onnx')), files['onnx/decoder_model_merged_q4.onnx']);
    const dec = hub.requests.filter((r) => r.path === '/cdn/onnx/decoder_model_merged_q4.onnx');
    assert.equal(dec.length, 3, JSON.stringify(dec));
    assert.equal(dec[0].range, undefined);
    assert.match(dec[1].range!, /^bytes=\d+-$/);
    assert.ok(Number(/\d+/.exec(dec[1].range!)![0]) > 0);
    assert.equal(dec[1].status, 206);
    assert.ok(lines.some((l) => /resuming at byte/.test(l)), lines.join('\n'));
  } finally {
    await hub.close();
  }
});

test('a server that ignores Range restarts the file from zero and still verifies', async () => {
  const files = smolvlmLikeFiles(100 * 1024);
  const hub = await startFakeHub({ repo: REPO, files });
  hub.ignoreRange = true;
  try {
    hub.cut('onnx/embed_tokens_q4.onnx', 10_000);
    const { dir } = await downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: tmp() });
    assert.deepEqual(readFileSync(path.join(dir, 'onnx/embed_tokens_q4.onnx')), files['onnx/embed_tokens_q4.onnx']);
  } finally {
    await hub.close();
  }
});

test('a checksum mismatch fails cleanly: no model folder, no corrupt file kept, a later run succeeds', async () => {
  const files = smolvlmLikeFiles();
  const hub = await startFakeHub({ repo: REPO, files });
  const root = tmp();
  try {
    const bad = Buffer.from(files['onnx/vision_encoder_q4.onnx']);
    bad[100] ^= 0xff;
    hub.corrupt('onnx/vision_encoder_q4.onnx', bad);
    await assert.rejects(
      downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root }),
      (e: Error) => e instanceof DownloadError && e.kind === 'checksum' && /vision_encoder_q4\.onnx: sha256/.test(e.message),
    );
    const finalDir = path.join(root, modelFolderName(REPO, 'q4'));
    assert.equal(existsSync(finalDir), false, 'no model folder');
    assert.deepEqual(await listInstalledModels(root), []);
    const staging = finalDir + '.partial';
    assert.equal(existsSync(path.join(staging, 'onnx/vision_encoder_q4.onnx')), false);
    assert.equal(existsSync(path.join(staging, 'onnx/vision_encoder_q4.onnx.partial')), false);
    // a wrong size too
    hub.corrupt('onnx/vision_encoder_q4.onnx', bad.subarray(0, bad.length - 1));
    await assert.rejects(downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root }), /size|transfer/);
    assert.equal(existsSync(finalDir), false);
    // the hub fixed: the next run completes, reusing the verified files
    hub.corrupt('onnx/vision_encoder_q4.onnx', files['onnx/vision_encoder_q4.onnx']);
    const before = hub.requests.length;
    const { dir } = await downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root });
    assert.equal(dir, finalDir);
    const fetched = hub.requests.slice(before).filter((r) => r.path.startsWith('/cdn/')).map((r) => r.path);
    assert.ok(!fetched.includes('/cdn/config.json'), `verified files are not fetched again: ${fetched}`);
    assert.deepEqual(readdirSync(root), [path.basename(finalDir)]);
  } finally {
    await hub.close();
  }
});

test('cancel leaves a resumable partial and no model; the next run resumes from the partial bytes', async () => {
  const files = smolvlmLikeFiles(2 * 1024 * 1024);
  const hub = await startFakeHub({ repo: REPO, files });
  const root = tmp();
  try {
    const ctrl = new AbortController();
    const p = downloadModel({
      endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root, signal: ctrl.signal,
      onProgress: (x) => { if (x.file === 'onnx/embed_tokens_q4.onnx' && x.fileDone > 100_000) ctrl.abort(); },
    });
    await assert.rejects(p, (e: Error) => e instanceof DownloadError && e.kind === 'cancelled');
    const finalDir = path.join(root, modelFolderName(REPO, 'q4'));
    assert.equal(existsSync(finalDir), false);
    const partial = path.join(finalDir + '.partial', 'onnx/embed_tokens_q4.onnx.partial');
    assert.ok(existsSync(partial));
    const before = hub.requests.length;
    await downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root });
    const again = hub.requests.slice(before).filter((r) => r.path === '/cdn/onnx/embed_tokens_q4.onnx');
    assert.equal(again.length, 1);
    assert.match(again[0].range ?? '', /^bytes=[1-9]\d*-$/);
    assert.deepEqual(readFileSync(path.join(finalDir, 'onnx/embed_tokens_q4.onnx')), files['onnx/embed_tokens_q4.onnx']);
  } finally {
    await hub.close();
  }
});

test('a re-download replaces an installed model atomically', async () => {
  const files = smolvlmLikeFiles(1000);
  const hub = await startFakeHub({ repo: REPO, files });
  const root = tmp();
  try {
    const { dir } = await downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root });
    writeFileSync(path.join(dir, 'stale.txt'), 'old');
    await downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root });
    assert.equal(existsSync(path.join(dir, 'stale.txt')), false);
    assert.deepEqual(readdirSync(root), [path.basename(dir)]);
  } finally {
    await hub.close();
  }
});

test('refuses plain http to anything but the loopback, unsafe paths, and redirects to http', async () => {
  await assert.rejects(planModelDownload({ endpoint: 'http://example.com', repo: REPO, dtype: 'q4', destRoot: tmp() }), /https/);
  await assert.rejects(planModelDownload({ endpoint: 'https://x.invalid', repo: '../../etc', dtype: 'q4', destRoot: tmp() }), /bad repository/);
  const hub = await startFakeHub({ repo: REPO, files: { ...smolvlmLikeFiles(100), '../evil.json': Buffer.from('x') } });
  try {
    // '../evil.json' is not in the root listing (it has a slash); a listing with one is refused:
    const fetchImpl: typeof fetch = async (input, init) => {
      const u = String(input);
      if (u.endsWith('/tree/main')) return new Response(JSON.stringify([{ type: 'file', path: '../evil.json', size: 1, oid: 'a'.repeat(40) }]));
      return fetch(input, init);
    };
    await assert.rejects(planModelDownload({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: tmp(), fetchImpl }), /unsafe file path|has no config/);
    const toHttp: typeof fetch = async (input, init) =>
      String(input).includes('/resolve/') ? new Response(null, { status: 302, headers: { location: 'http://example.com/x' } }) : fetch(input, init);
    await assert.rejects(downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: tmp(), fetchImpl: toHttp }), /refusing to fetch http:\/\/example\.com/);
  } finally {
    await hub.close();
  }
});

test('not enough disk space is reported before anything is downloaded', async () => {
  const files = smolvlmLikeFiles(10);
  files['onnx/decoder_model_merged_q4.onnx'] = Buffer.alloc(0);
  const hub = await startFakeHub({ repo: REPO, files });
  const root = tmp();
  try {
    // A hub that lists a file far larger than any disk.
    const huge: typeof fetch = async (input, init) => {
      const r = await fetch(input, init);
      if (!String(input).endsWith('/tree/main/onnx')) return r;
      const list = (await r.json()) as { path: string; lfs?: { size: number } }[];
      for (const e of list) if (e.lfs && e.path.includes('decoder')) e.lfs.size = 2 ** 50;
      return new Response(JSON.stringify(list));
    };
    await assert.rejects(downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root, fetchImpl: huge }), /not enough disk space/);
    assert.deepEqual(await listInstalledModels(root), []);
  } finally {
    await hub.close();
  }
});

test('listInstalledModels ignores staging and incomplete folders', async () => {
  const root = tmp();
  mkdirSync(path.join(root, 'a--q4.partial'), { recursive: true });
  writeFileSync(path.join(root, 'a--q4.partial', MANIFEST), '{"repo":"a/b","dtype":"q4","files":[]}');
  mkdirSync(path.join(root, 'no-manifest'));
  assert.deepEqual(await listInstalledModels(root), []);
  void randomBytes;
});

test('a full disk during a write stops at once with a clear error, installs nothing, and a later run resumes', async () => {
  const files = smolvlmLikeFiles(2 * 1024 * 1024);
  const hub = await startFakeHub({ repo: REPO, files });
  const root = tmp();
  // The disk fills up after 300 kB of one file: writes to its partial file fail with ENOSPC, as on a full disk.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fsp = require('node:fs/promises') as typeof import('node:fs/promises');
  const realOpen = fsp.open;
  let written = 0;
  (fsp as { open: typeof realOpen }).open = (async (...args: Parameters<typeof realOpen>) => {
    const fh = await realOpen(...args);
    if (!String(args[0]).endsWith('decoder_model_merged_q4.onnx.partial')) return fh;
    const write = fh.write.bind(fh) as (b: Uint8Array) => Promise<unknown>;
    (fh as unknown as { write: (b: Uint8Array) => Promise<unknown> }).write = async (b: Uint8Array) => {
      if (written + b.byteLength > 300_000) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      written += b.byteLength;
      return write(b);
    };
    return fh;
  }) as typeof realOpen;
  try {
    await assert.rejects(downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root }),
      (e: Error) => e instanceof DownloadError && e.kind === 'disk' && /disk is full \(ENOSPC\)/.test(e.message));
    assert.deepEqual(await listInstalledModels(root), []);
    const finalDir = path.join(root, modelFolderName(REPO, 'q4'));
    assert.equal(existsSync(finalDir), false, 'no half model where a model would be');
    (fsp as { open: typeof realOpen }).open = realOpen;
    const before = hub.requests.length;
    await downloadModel({ endpoint: hub.url, repo: REPO, dtype: 'q4', destRoot: root });
    const again = hub.requests.slice(before).filter((r) => r.path === '/cdn/onnx/decoder_model_merged_q4.onnx');
    assert.equal(again.length, 1);
    assert.match(again[0].range ?? '', /^bytes=[1-9]\d*-$/, 'resumed from the bytes written before the disk filled');
    assert.deepEqual(readFileSync(path.join(finalDir, 'onnx/decoder_model_merged_q4.onnx')), files['onnx/decoder_model_merged_q4.onnx']);
  } finally {
    (fsp as { open: typeof realOpen }).open = realOpen;
    await hub.close();
  }
});
