// Seeded mutation fuzzer over the image path users feed us: decodeImage (sharp / libvips) + preprocess (the tiny
// model's Idefics3 config). Valid seed files of every accepted format (and a BMP, which this sharp build cannot
// read) are mutated: bit flips, byte runs, truncation, chunk duplication, header size fields set huge, random
// insertions. Every case must give either a well-formed Preprocessed or a one-line BadInputError: never another
// error type, never a hang, never an unbounded allocation. FUZZ_SEED / FUZZ_CASES / FUZZ_SECONDS override the defaults.
import { test } from 'node:test';
import { seededRandom } from '../../runtime/generate/sampling.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gunzipSync, gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { decodeImage, preprocess, type Preprocessed } from '../../runtime/model/preprocess.js';
import { readModelFolder, type ImageProcessorConfig } from '../../runtime/model/modelFolder.js';
import { BadInputError } from '../../runtime/errors.js';

const root = join(__dirname, '..', '..');
const cfg: ImageProcessorConfig = readModelFolder(join(root, 'test', 'fixtures', 'tiny-model')).image;
const SEED = Number(process.env.FUZZ_SEED ?? 20240607) >>> 0;
const CASES = Number(process.env.FUZZ_CASES ?? 3000);
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 60);
const CASE_TIMEOUT_MS = 5000;
/** FUZZ_TRACE=<regex>: print the cases whose rejection message matches (to find the input behind a message). */
const TRACE = process.env.FUZZ_TRACE ? new RegExp(process.env.FUZZ_TRACE) : null;
const RSS_LIMIT = 1.5 * 2 ** 30;

const dir = mkdtempSync(join(tmpdir(), 'evlm-fuzz-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// ---- seeded randomness --------------------------------------------------------------------------------------


// ---- seed files ---------------------------------------------------------------------------------------------

interface SeedFile {
  name: string;
  kind: 'png' | 'jpeg' | 'webp' | 'gif' | 'bmp' | 'svg' | 'svgz' | 'tiff';
  bytes: Buffer;
}

function pattern(w: number, h: number, ch: number, salt = 0): Buffer {
  const raw = Buffer.alloc(w * h * ch);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < ch; c++) raw[(y * w + x) * ch + c] = (x * 7 + y * 13 + c * 61 + salt) & 0xff;
    }
  }
  return raw;
}

const rawImg = (w: number, h: number, ch: 1 | 2 | 3 | 4, salt = 0) => sharp(pattern(w, h, ch, salt), { raw: { width: w, height: h, channels: ch } });

/** A 24-bit BI_RGB bottom-up BMP (written by hand: this sharp build has no BMP encoder or decoder). */
function bmp(w: number, h: number): Buffer {
  const stride = Math.ceil((w * 3) / 4) * 4;
  const size = 54 + stride * h;
  const b = Buffer.alloc(size);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(size, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(w, 18);
  b.writeInt32LE(h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  b.writeUInt32LE(stride * h, 34);
  const px = pattern(w, h, 3);
  for (let y = 0; y < h; y++) px.copy(b, 54 + (h - 1 - y) * stride, y * w * 3, (y + 1) * w * 3);
  return b;
}

async function seedFiles(): Promise<SeedFile[]> {
  const s: SeedFile[] = [];
  const add = (name: string, kind: SeedFile['kind'], bytes: Buffer) => s.push({ name, kind, bytes });
  add('rgb.png', 'png', await rawImg(24, 16, 3).png().toBuffer());
  add('rgba.png', 'png', await rawImg(16, 20, 4).png().toBuffer());
  add('gray-alpha.png', 'png', await rawImg(12, 12, 2).png().toBuffer());
  add('palette.png', 'png', await rawImg(20, 14, 3).png({ palette: true, colours: 16 }).toBuffer());
  add('interlaced.png', 'png', await rawImg(18, 18, 3).png({ progressive: true }).toBuffer());
  add('16bit.png', 'png', await rawImg(10, 8, 3).toColourspace('rgb16').png().toBuffer());
  add('baseline.jpg', 'jpeg', await rawImg(32, 24, 3).jpeg({ quality: 80 }).toBuffer());
  add('progressive.jpg', 'jpeg', await rawImg(24, 32, 3).jpeg({ progressive: true }).toBuffer());
  add('cmyk.jpg', 'jpeg', await rawImg(16, 16, 3).toColourspace('cmyk').jpeg().toBuffer());
  add('gray.jpg', 'jpeg', await rawImg(16, 12, 1).jpeg().toBuffer());
  add('lossy.webp', 'webp', await rawImg(20, 20, 3).webp({ quality: 70 }).toBuffer());
  add('lossless-alpha.webp', 'webp', await rawImg(16, 12, 4).webp({ lossless: true }).toBuffer());
  add('static.gif', 'gif', await rawImg(16, 16, 3).gif().toBuffer());
  const frames = await Promise.all([0, 90].map((salt) => rawImg(12, 12, 3, salt).png().toBuffer()));
  add('animated.gif', 'gif', await sharp(frames, { join: { animated: true } }).gif().toBuffer());
  add('tiny.tiff', 'tiff', await rawImg(8, 8, 3).tiff().toBuffer());
  add('rgb.bmp', 'bmp', bmp(10, 6));
  add('shapes.svg', 'svg', Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30" viewBox="0 0 40 30">' +
    '<defs><linearGradient id="g"><stop offset="0" stop-color="#f00"/><stop offset="1" stop-color="#00f"/></linearGradient></defs>' +
    '<rect width="40" height="30" fill="url(#g)"/><circle cx="20" cy="15" r="9" fill="#0f0" opacity="0.5"/>' +
    '<path d="M0 0 L40 30 M40 0 L0 30" stroke="black" stroke-width="2"/></svg>'));
  add('xml.svg', 'svg', Buffer.from(
    '<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="16" height="24">' +
    '<rect x="2" y="2" width="12" height="20" fill="#123456" stroke="#fff"/><use href="#r"/></svg>'));
  add('gzipped.svgz', 'svgz', gzipSync(s[s.length - 2].bytes));
  return s;
}

// ---- mutations ----------------------------------------------------------------------------------------------

type Rng = () => number;
const int = (r: Rng, n: number) => Math.floor(r() * n);
const HUGE = [0, 1, 0x7fff, 0xffff, 0x10000, 50_000, 65_500, 0x7fffffff, 0x80000000, 0xffffffff, 6325, 40_000];

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** PNG chunks as [start, end) byte ranges (length + type + data + crc); stops at the first inconsistent one. */
function pngChunks(b: Buffer): [number, number][] {
  const out: [number, number][] = [];
  let p = 8;
  while (p + 12 <= b.length) {
    const len = b.readUInt32BE(p);
    if (p + 12 + len > b.length) break;
    out.push([p, p + 12 + len]);
    p += 12 + len;
  }
  return out;
}

/** Recomputes every PNG chunk CRC, so that a mutation gets past the CRC check into the decoder proper. */
function fixPngCrcs(b: Buffer): Buffer {
  const c = Buffer.from(b);
  for (const [s, e] of pngChunks(c)) c.writeUInt32BE(crc32(c.subarray(s + 4, e - 4)), e - 4);
  return c;
}

/** Writes huge (or zero, or odd) values into the format's width / height fields. */
function hugeHeader(b: Buffer, kind: SeedFile['kind'], r: Rng): Buffer {
  const c = Buffer.from(b);
  const pick = () => HUGE[int(r, HUGE.length)];
  const which = int(r, 3); // 0: width, 1: height, 2: both
  try {
    switch (kind) {
      case 'png': {
        if (which !== 1) c.writeUInt32BE(pick(), 16);
        if (which !== 0) c.writeUInt32BE(pick(), 20);
        return r() < 0.8 ? fixPngCrcs(c) : c;
      }
      case 'jpeg': {
        for (let p = 2; p + 9 < c.length; p++) {
          if (c[p] === 0xff && (c[p + 1] === 0xc0 || c[p + 1] === 0xc1 || c[p + 1] === 0xc2)) {
            if (which !== 1) c.writeUInt16BE(pick() & 0xffff, p + 7);
            if (which !== 0) c.writeUInt16BE(pick() & 0xffff, p + 5);
            break;
          }
        }
        return c;
      }
      case 'gif': {
        // logical screen (6, 8) and, at random, the first image descriptor
        if (which !== 1) c.writeUInt16LE(pick() & 0xffff, 6);
        if (which !== 0) c.writeUInt16LE(pick() & 0xffff, 8);
        const d = c.indexOf(0x2c, 13);
        if (d > 0 && d + 9 < c.length && r() < 0.5) {
          c.writeUInt16LE(pick() & 0xffff, d + 5);
          c.writeUInt16LE(pick() & 0xffff, d + 7);
        }
        return c;
      }
      case 'webp': {
        const fourcc = c.toString('latin1', 12, 16);
        if (fourcc === 'VP8X') {
          const w = (pick() - 1) & 0xffffff;
          const h = (pick() - 1) & 0xffffff;
          if (which !== 1) c.writeUIntLE(w, 24, 3);
          if (which !== 0) c.writeUIntLE(h, 27, 3);
        } else if (fourcc === 'VP8 ') {
          if (which !== 1) c.writeUInt16LE(pick() & 0x3fff, 26);
          if (which !== 0) c.writeUInt16LE(pick() & 0x3fff, 28);
        } else if (fourcc === 'VP8L') {
          // 14-bit width-1 and height-1 packed after the 0x2f signature byte
          const w = (pick() - 1) & 0x3fff;
          const h = (pick() - 1) & 0x3fff;
          const bits = c.readUInt32LE(21);
          const v = (bits & ~0x0fffffff) | (which !== 1 ? w : bits & 0x3fff) | ((which !== 0 ? h : (bits >>> 14) & 0x3fff) << 14);
          c.writeUInt32LE(v >>> 0, 21);
        }
        return c;
      }
      case 'bmp': {
        const v = () => (r() < 0.3 ? -(pick() & 0x7fffffff) : pick() & 0x7fffffff) | 0;
        if (which !== 1) c.writeInt32LE(v(), 18);
        if (which !== 0) c.writeInt32LE(v(), 22);
        return c;
      }
      case 'tiff': {
        // tags 256 (ImageWidth) and 257 (ImageLength) in the first IFD (little endian, as sharp writes)
        const ifd = c.readUInt32LE(4);
        const n = c.readUInt16LE(ifd);
        for (let k = 0; k < n; k++) {
          const e = ifd + 2 + k * 12;
          const tag = c.readUInt16LE(e);
          const type = c.readUInt16LE(e + 2);
          if ((tag === 256 && which !== 1) || (tag === 257 && which !== 0)) {
            if (type === 3) c.writeUInt16LE(pick() & 0xffff, e + 8);
            else c.writeUInt32LE(pick() >>> 0, e + 8);
          }
        }
        return c;
      }
      case 'svgz':
        return gzipSync(hugeHeader(gunzipSync(c), 'svg', r));
      case 'svg': {
        const vals = ['100000', '1e9', '-5', '0', 'NaN', '50000', '6000', '99999999999999999999', '1e-9', '40000px', '100%', '9e99'];
        const v = () => vals[int(r, vals.length)];
        let t = c.toString('utf8');
        if (which !== 1) t = t.replace(/width="[^"]*"/, `width="${v()}"`);
        if (which !== 0) t = t.replace(/height="[^"]*"/, `height="${v()}"`);
        if (r() < 0.3) t = t.replace(/viewBox="[^"]*"/, `viewBox="0 0 ${v()} ${v()}"`);
        return Buffer.from(t);
      }
    }
  } catch {
    // a seed too short for its header: leave it as is
  }
  return c;
}

const MUTATIONS = ['bitflip', 'byterun', 'truncate', 'duplicate', 'huge', 'insert'] as const;
type Mutation = (typeof MUTATIONS)[number];

function mutate(seed: SeedFile, r: Rng): { bytes: Buffer; ops: string[] } {
  let b: Buffer = Buffer.from(seed.bytes);
  const ops: string[] = [];
  const n = r() < 0.6 ? 1 : 2 + int(r, 2); // mostly one mutation, so that many cases still decode
  for (let k = 0; k < n; k++) {
    const op: Mutation = MUTATIONS[int(r, MUTATIONS.length)];
    // keep the signature intact most of the time, so the mutation reaches the decoder behind it
    const from = r() < 0.8 ? Math.min(16, b.length - 1) : 0;
    const at = () => from + int(r, Math.max(1, b.length - from));
    switch (op) {
      case 'bitflip': {
        const flips = 1 + int(r, 8);
        for (let f = 0; f < flips; f++) b[at()] ^= 1 << int(r, 8);
        ops.push(`bitflip x${flips}`);
        break;
      }
      case 'byterun': {
        const p = at();
        const len = Math.min(b.length - p, 1 + int(r, 64));
        const v = [0x00, 0xff, 0x7f, 0x80, int(r, 256)][int(r, 5)];
        b.fill(v, p, p + len);
        ops.push(`byterun ${p}+${len}=${v}`);
        break;
      }
      case 'truncate': {
        const p = int(r, b.length);
        b = b.subarray(0, p);
        ops.push(`truncate ${p}`);
        break;
      }
      case 'duplicate': {
        const chunks = seed.kind === 'png' ? pngChunks(b) : [];
        let s: number;
        let e: number;
        if (chunks.length > 0 && r() < 0.7) [s, e] = chunks[int(r, chunks.length)];
        else {
          s = int(r, b.length);
          e = Math.min(b.length, s + 1 + int(r, 256));
        }
        const p = seed.kind === 'png' && chunks.length > 0 && r() < 0.7 ? chunks[int(r, chunks.length)][0] : int(r, b.length + 1);
        b = Buffer.concat([b.subarray(0, p), b.subarray(s, e), b.subarray(p)]);
        ops.push(`duplicate ${s}..${e}@${p}`);
        break;
      }
      case 'huge':
        b = hugeHeader(b, seed.kind, r);
        ops.push('huge');
        break;
      case 'insert': {
        const p = at();
        const len = 1 + int(r, 32);
        const ins = Buffer.alloc(len);
        for (let i = 0; i < len; i++) ins[i] = int(r, 256);
        b = Buffer.concat([b.subarray(0, p), ins, b.subarray(p)]);
        ops.push(`insert ${len}@${p}`);
        break;
      }
    }
    if (b.length === 0) break;
  }
  if (seed.kind === 'png' && r() < 0.4) {
    b = fixPngCrcs(b);
    ops.push('crc-fixed');
  }
  return { bytes: b, ops };
}

// ---- checks -------------------------------------------------------------------------------------------------

/** Throws (an AssertionError) when `p` is not a well-formed Preprocessed for `cfg`. */
function checkPreprocessed(p: Preprocessed): void {
  const T = cfg.tileSize;
  assert.equal(p.tile, T);
  assert.ok(Number.isInteger(p.rows) && Number.isInteger(p.cols) && p.rows >= 0 && p.cols >= 0);
  assert.equal(p.numImages, p.rows === 0 && p.cols === 0 ? 1 : p.rows * p.cols + 1);
  assert.ok(p.rows * T <= cfg.longestEdge * 2 && p.cols * T <= cfg.longestEdge * 2, `${p.rows} x ${p.cols} tiles`);
  assert.equal(p.pixelValues.length, p.numImages * 3 * T * T);
  assert.equal(p.pixelMask.length, p.numImages * T * T);
  for (let i = 0; i < p.pixelValues.length; i++) {
    const v = p.pixelValues[i];
    if (!(Number.isFinite(v) && v >= -1 && v <= 1)) assert.fail(`pixel value ${v} at ${i}`);
  }
  let ones = 0;
  for (let i = 0; i < p.pixelMask.length; i++) {
    const m = p.pixelMask[i];
    if (m !== 0 && m !== 1) assert.fail(`mask value ${m} at ${i}`);
    ones += m;
  }
  assert.ok(ones > 0, 'an all-zero mask');
}

type Outcome = { kind: 'ok'; ms: number } | { kind: 'rejected'; message: string; ms: number };

/** Runs one case; resolves with the outcome, or rejects with what was wrong (other error type, hang, bad result). */
async function runCase(input: Buffer | string): Promise<Outcome> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`HANG: no result within ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
  });
  try {
    const work = (async () => checkPreprocessed(await preprocess(await decodeImage(input), cfg)))();
    await Promise.race([work, hang]);
    return { kind: 'ok', ms: performance.now() - t0 };
  } catch (e) {
    if (e instanceof BadInputError) {
      const message = e.message;
      if (message.includes('\n') || message.trim() === '') throw new Error(`BadInputError message is not one line: ${JSON.stringify(message)}`);
      // clear: says what is wrong with the image, no dangling colon, no bare "Unknown error", not a wall of text
      if (!/^(image |not a supported image|SVG |BMP |compressed )/.test(message) || /:\s*$|unknown error/i.test(message) || message.length > 300) {
        throw new Error(`BadInputError message is not a clear line: ${JSON.stringify(message)}`);
      }
      return { kind: 'rejected', message, ms: performance.now() - t0 };
    }
    throw e;
  } finally {
    clearTimeout(timer);
    // Synchronous work (preprocess's JS loops) cannot be pre-empted by the race: bound it after the fact.
    const ms = performance.now() - t0;
    if (ms > CASE_TIMEOUT_MS) throw new Error(`HANG: case took ${ms.toFixed(0)} ms (limit ${CASE_TIMEOUT_MS})`);
  }
}

const gcHint = () => (globalThis as { gc?: () => void }).gc?.();

// Cases the fuzzer (or review) found worth keeping: each must stay an answer or a clean BadInputError.
async function regressionCases(seeds: SeedFile[]): Promise<{ name: string; bytes: Buffer }[]> {
  const png = seeds.find((s) => s.name === 'rgb.png')!.bytes;
  const ihdr = (w: number, h: number) => {
    const c = Buffer.from(png);
    c.writeUInt32BE(w, 16);
    c.writeUInt32BE(h, 20);
    return fixPngCrcs(c);
  };
  // A 1 x 40,000 PNG (40 megapixel limit not reached by pixels, only by aspect): every row the same.
  const strip = await sharp(Buffer.alloc(1 * 20000 * 3, 200), { raw: { width: 1, height: 20000, channels: 3 } }).png().toBuffer();
  // zlib stream that inflates far beyond its size (a compression bomb within the pixel limit: 6000 x 6000 RGB)
  const bombRows = Buffer.alloc(6000 * (1 + 6000 * 3)); // filter byte 0 + zero pixels, 108 MB inflated
  const idat = deflateSync(bombRows, { level: 9 });
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const hdr = Buffer.alloc(13);
  hdr.writeUInt32BE(6000, 0);
  hdr.writeUInt32BE(6000, 4);
  hdr[8] = 8;
  hdr[9] = 2;
  const zbomb = Buffer.concat([png.subarray(0, 8), chunk('IHDR', hdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
  return [
    { name: 'png IHDR 0 x 0', bytes: ihdr(0, 0) },
    { name: 'png IHDR 2^31-1 x 1', bytes: ihdr(0x7fffffff, 1) },
    { name: 'png IHDR 0xffffffff x 0xffffffff', bytes: ihdr(0xffffffff, 0xffffffff) },
    { name: 'png IHDR 6325 x 6325 (just under the limit), no data', bytes: ihdr(6325, 6325) },
    { name: 'png 1 x 20000 strip', bytes: strip },
    { name: 'png 6000 x 6000 zlib bomb (36 MP, 108 MB inflated from a few KB)', bytes: zbomb },
    { name: 'svg width 1e9', bytes: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="1e9" height="1e9"><rect width="10" height="10"/></svg>') },
    { name: 'svg width 0', bytes: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"/>') },
    { name: 'bmp header only', bytes: bmp(4, 4).subarray(0, 54) },
  ];
}

test(`fuzz: decodeImage + preprocess on mutated images (seed ${SEED}, up to ${CASES} cases / ${SECONDS} s)`, { timeout: (SECONDS + 120) * 1000 }, async () => {
  const seeds = await seedFiles();
  // Every seed itself must decode (except the BMP: this libvips has no BMP loader) — else the fuzzer mutates junk.
  for (const s of seeds) {
    const o = await runCase(s.bytes);
    if (s.kind === 'bmp') assert.ok(o.kind === 'rejected' || o.kind === 'ok');
    else assert.equal(o.kind, 'ok', `seed ${s.name}: ${o.kind === 'rejected' ? o.message : ''}`);
  }

  const stats = { cases: 0, ok: 0, rejected: 0, maxMs: 0, slowest: '', peakRss: process.memoryUsage.rss() };
  const messages = new Map<string, number>();
  const perMutation = new Map<string, { ok: number; rejected: number }>();
  const perSeed = new Map<string, { ok: number; rejected: number }>();
  const failures: string[] = [];
  const tally = (m: Map<string, { ok: number; rejected: number }>, k: string, o: Outcome) => {
    const e = m.get(k) ?? { ok: 0, rejected: 0 };
    e[o.kind]++;
    m.set(k, e);
  };
  const record = (label: string, o: Outcome) => {
    stats.cases++;
    stats[o.kind]++;
    if (o.kind === 'rejected') {
      // group messages by shape: numbers and paths collapsed
      const shape = o.message.replace(/\d+(\.\d+)?/g, 'N').replace(/\(.{0,80}\)/, '(...)').slice(0, 110);
      messages.set(shape, (messages.get(shape) ?? 0) + 1);
      if (TRACE && TRACE.test(o.message)) console.log(`# trace: ${label}: ${o.message}`);
    }
    if (o.ms > stats.maxMs) {
      stats.maxMs = o.ms;
      stats.slowest = label;
    }
    const rss = process.memoryUsage.rss();
    if (rss > stats.peakRss) stats.peakRss = rss;
    if (rss > RSS_LIMIT) failures.push(`${label}: RSS ${(rss / 2 ** 20).toFixed(0)} MiB over the ${RSS_LIMIT / 2 ** 20} MiB bound`);
  };

  for (const rc of await regressionCases(seeds)) {
    try {
      record(`regression ${rc.name}`, await runCase(rc.bytes));
    } catch (e) {
      failures.push(`regression ${rc.name}: ${(e as Error).stack?.split('\n').slice(0, 3).join(' | ')}`);
    }
  }

  const r = seededRandom(SEED);
  const t0 = performance.now();
  let i = 0;
  for (; i < CASES && performance.now() - t0 < SECONDS * 1000; i++) {
    const seed = seeds[i % seeds.length];
    const { bytes, ops } = mutate(seed, r);
    const label = `case ${i} (${seed.name}: ${ops.join(', ')}; ${bytes.length} bytes)`;
    // every 8th case through a file path (lstat, size checks, readFile), the rest as bytes
    let input: Buffer | string = bytes;
    if (i % 8 === 0) {
      input = join(dir, `case-${i % 64}.${seed.kind}`);
      writeFileSync(input, bytes);
    }
    try {
      const o = await runCase(input);
      record(label, o);
      tally(perSeed, seed.name, o);
      for (const op of ops) tally(perMutation, op.split(' ')[0], o);
    } catch (e) {
      const err = e as Error;
      failures.push(`${label}: ${err.name}: ${err.message.split('\n')[0]}`);
      if (failures.length >= 20) break;
    }
    if (i % 200 === 199) gcHint();
  }
  const secs = (performance.now() - t0) / 1000;

  console.log(`# fuzz summary: seed ${SEED}, ${stats.cases} cases (${i} mutated + regressions) in ${secs.toFixed(1)} s; ` +
    `ok ${stats.ok}, rejected (BadInputError) ${stats.rejected}, failures ${failures.length}; ` +
    `peak RSS ${(stats.peakRss / 2 ** 20).toFixed(0)} MiB; slowest case ${stats.maxMs.toFixed(0)} ms: ${stats.slowest}`);
  console.log(`# per seed (ok/rejected): ${[...perSeed].map(([k, v]) => `${k} ${v.ok}/${v.rejected}`).join(', ')}`);
  console.log(`# per mutation (ok/rejected): ${[...perMutation].map(([k, v]) => `${k} ${v.ok}/${v.rejected}`).join(', ')}`);
  for (const [m, n] of [...messages].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.FUZZ_SHOW ?? 15))) console.log(`#   ${String(n).padStart(5)}  ${m}`);

  assert.deepEqual(failures, [], `${failures.length} fuzz failures:\n${failures.join('\n')}`);
  assert.ok(i >= Math.min(CASES, 300), `only ${i} cases ran in ${SECONDS} s`);
  assert.ok(stats.ok > 0 && stats.rejected > 0, 'the fuzzer should see both answers and rejections');
  assert.ok(stats.peakRss < RSS_LIMIT);
});
