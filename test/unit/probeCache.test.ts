// The device probe's cache on disk: a hit, misses for every part of the key, and files that are corrupt,
// unreadable or of another version (a miss, never an error; a write replaces a corrupt file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROBE_CACHE_VERSION, decoderIdentity, machineId, PROBE_FILE, readProbe, writeProbe, type ProbeKey } from '../../runtime/model/probeCache.js';

const key: ProbeKey = { decoder: 'scored r17 of sha256 0123456789abcdef', gpu: 'webgpu', ort: '1.30.0', machine: 'Xeon x 2, linux-x64' };
const temp = () => mkdtempSync(join(tmpdir(), 'evlm-probe-'));

test('probe cache: a miss, then a hit with the written numbers', async () => {
  const dir = temp();
  try {
    assert.equal(await readProbe(dir, key), null, 'no file: a miss');
    assert.equal(await writeProbe(join(dir, 'sub'), key, { gpuStepMs: 9.8, cpuStepMs: 2.1 }), null, 'the folder is made');
    const hit = await readProbe(join(dir, 'sub'), key);
    assert.equal(hit?.gpuStepMs, 9.8);
    assert.equal(hit?.cpuStepMs, 2.1);
    assert.ok(hit && !Number.isNaN(Date.parse(hit.measuredAt)));
    assert.deepEqual(readdirSync(join(dir, 'sub')), [PROBE_FILE], 'no temporary file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('probe cache: any part of the key changed is a miss; entries live side by side', async () => {
  const dir = temp();
  try {
    assert.equal(await writeProbe(dir, key, { gpuStepMs: 9.8, cpuStepMs: 2.1 }), null);
    for (const other of [{ decoder: 'scored r18 of sha256 0123456789abcdef' }, { gpu: 'cuda' as const }, { ort: '1.31.0' }, { machine: 'Xeon x 16, linux-x64' }]) {
      assert.equal(await readProbe(dir, { ...key, ...other }), null, JSON.stringify(other));
    }
    assert.equal(await writeProbe(dir, { ...key, gpu: 'cuda' }, { gpuStepMs: 1, cpuStepMs: 2.1 }), null);
    assert.equal((await readProbe(dir, key))?.gpuStepMs, 9.8, 'the first entry kept');
    assert.equal((await readProbe(dir, { ...key, gpu: 'cuda' }))?.gpuStepMs, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('probe cache: a corrupt, foreign or half-written file is a miss, and the next write replaces it', async () => {
  const dir = temp();
  const file = join(dir, PROBE_FILE);
  try {
    const v = PROBE_CACHE_VERSION;
    for (const bad of [`{"version": ${v}, "entr`, '\u0000\u0001garbage', '[]', 'null', `{"version": ${v + 1}, "entries": {}}`, `{"version": ${v}, "entries": []}`]) {
      writeFileSync(file, bad);
      assert.equal(await readProbe(dir, key), null, JSON.stringify(bad));
    }
    const entryOf = (version: number, v: unknown) => JSON.stringify({ version, entries: { [`webgpu | ${key.decoder} | onnxruntime-node 1.30.0 | ${key.machine}`]: v } });
    const entry = (x: unknown) => entryOf(v, x);
    writeFileSync(file, entry({ gpuStepMs: 9.8, cpuStepMs: 2.1 }));
    assert.equal((await readProbe(dir, key))?.cpuStepMs, 2.1, 'the entry format the test writes is the real one');
    // version 1 probed at 32 tokens, too short a context to rank the devices: its answers are a miss
    writeFileSync(file, entryOf(1, { gpuStepMs: 9.8, cpuStepMs: 2.1 }));
    assert.equal(await readProbe(dir, key), null, 'a version-1 answer is void');
    for (const v of [{ gpuStepMs: 'fast', cpuStepMs: 2 }, { gpuStepMs: 9.8, cpuStepMs: null }, { gpuStepMs: -1, cpuStepMs: 2 }, null, 7]) {
      writeFileSync(file, entry(v));
      assert.equal(await readProbe(dir, key), null, JSON.stringify(v));
    }
    writeFileSync(file, 'not json');
    assert.equal(await writeProbe(dir, key, { gpuStepMs: 5, cpuStepMs: 4 }), null);
    assert.equal((await readProbe(dir, key))?.gpuStepMs, 5);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).version, PROBE_CACHE_VERSION);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('probe cache: an unreadable file (a folder in its place) is a miss; the write says why and throws nothing', async () => {
  const dir = temp();
  try {
    mkdirSync(join(dir, PROBE_FILE));
    assert.equal(await readProbe(dir, key), null);
    const err = await writeProbe(dir, key, { gpuStepMs: 5, cpuStepMs: 4 });
    assert.ok(err && err.length > 0, `write error: ${err}`);
    assert.deepEqual(readdirSync(dir), [PROBE_FILE], 'no temporary file left');
    assert.equal(await writeProbe(dir, key, { gpuStepMs: NaN, cpuStepMs: 4 }), 'not two positive step times');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('decoder identity: the derived decoder by its source hash, another file by name, size and mtime', async () => {
  const dir = temp();
  try {
    const f = join(dir, 'decoder_model_merged.onnx');
    writeFileSync(f, 'abc');
    utimesSync(f, 1_700_000_000, 1_700_000_000);
    assert.equal(await decoderIdentity(f), 'decoder_model_merged.onnx, 3 bytes, mtime 1700000000000');
    writeFileSync(f, 'abcd');
    utimesSync(f, 1_700_000_000, 1_700_000_000);
    assert.notEqual(await decoderIdentity(f), 'decoder_model_merged.onnx, 3 bytes, mtime 1700000000000', 'a new size is a new identity');
    assert.equal(await decoderIdentity(f, { sourceSha256: 'ab'.repeat(32), version: 17 }), `scored r17 of sha256 ${'ab'.repeat(8)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('machine identity: CPU model and count, platform, and the overrides that change speed', () => {
  const plain = machineId({});
  assert.match(plain, / x \d+, \w+-\w+$/);
  assert.equal(machineId({ ELASTIC_VLM_THREADS: '1' }), `${plain}, threads 1`);
  assert.equal(machineId({ VK_ICD_FILENAMES: '/usr/share/vulkan/icd.d/lvp_icd.json' }), `${plain}, vulkan /usr/share/vulkan/icd.d/lvp_icd.json`);
});
