import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeImage, preprocess, sizeForLongestEdge, sizeForTiles } from '../../runtime/model/preprocess.js';
import type { ImageProcessorConfig } from '../../runtime/model/modelFolder.js';
import { BadInputError } from '../../runtime/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'evlm-pre-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const cfg: ImageProcessorConfig = {
  doResize: true, longestEdge: 128, tileSize: 64, doImageSplitting: true, doRescale: true, rescaleFactor: 1 / 255,
  doNormalize: true, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resample: 1,
};

async function png(w: number, h: number, opts: { channels?: 3 | 4; bits16?: boolean } = {}): Promise<Buffer> {
  const ch = opts.channels ?? 3;
  const raw = Buffer.alloc(w * h * ch);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
  let img = sharp(raw, { raw: { width: w, height: h, channels: ch } });
  if (opts.bits16) img = img.toColourspace('rgb16');
  return img.png().toBuffer();
}

test('resize arithmetic follows the Idefics3 processor', () => {
  // 100 x 80 (w x h) to longest edge 128: w = 128, h = trunc(128 / 1.25) = 102 (even, kept)
  assert.deepEqual(sizeForLongestEdge(80, 100, 128), [102, 128]);
  // odd results round up to even: 100 x 75 -> h = trunc(128 / (100/75)) = 96
  assert.deepEqual(sizeForLongestEdge(75, 100, 128), [96, 128]);
  // h = trunc(128 / (300/101)) = 43 -> 44
  assert.deepEqual(sizeForLongestEdge(101, 300, 128), [44, 128]);
  // portrait: 80 x 100 -> h = 128, w = trunc(128 * 0.8) = 102
  assert.deepEqual(sizeForLongestEdge(100, 80, 128), [128, 102]);
  // small images are upscaled too (the processor always rescales the longest edge to the target)
  assert.deepEqual(sizeForLongestEdge(10, 10, 128), [128, 128]);
  // multiples of the tile: 102 x 128 -> width 128 (2 tiles), height trunc(128/1.2549) = 102 -> ceil to 128
  assert.deepEqual(sizeForTiles(102, 128, 64), [128, 128]);
  assert.deepEqual(sizeForTiles(44, 128, 64), [64, 128]);
  assert.deepEqual(sizeForTiles(128, 102, 64), [128, 128]);
});

test('a split image gives rows x cols tiles plus a global image, normalised to [-1, 1]', async () => {
  const rgb = await decodeImage(await png(100, 50));
  assert.equal(rgb.width, 100);
  assert.equal(rgb.height, 50);
  const p = await preprocess(rgb, cfg);
  // 100 x 50 -> 128 x 64 -> tiles of 64: 1 row x 2 cols + global
  assert.equal(p.rows, 1);
  assert.equal(p.cols, 2);
  assert.equal(p.numImages, 3);
  assert.equal(p.pixelValues.length, 3 * 3 * 64 * 64);
  let min = Infinity;
  let max = -Infinity;
  for (const v of p.pixelValues) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  assert.ok(min >= -1 && max <= 1, `range ${min}..${max}`);
  assert.ok(p.pixelMask.every((m) => m === 1));
});

test('a tile is an exact crop of the resized image (no extra resampling)', async () => {
  // A 128 x 64 image needs no resize at all: tile 0 must equal the left half pixel for pixel.
  const buf = await png(128, 64);
  const rgb = await decodeImage(buf);
  const p = await preprocess(rgb, cfg);
  const plane = 64 * 64;
  for (const [x, y] of [[0, 0], [63, 63], [10, 40]]) {
    for (let c = 0; c < 3; c++) {
      const expect = (rgb.data[(y * 128 + x) * 3 + c] / 255 - 0.5) / 0.5;
      assert.ok(Math.abs(p.pixelValues[c * plane + y * 64 + x] - expect) < 1e-6);
    }
  }
});

test('unsplit config resizes to one square tile', async () => {
  const p = await preprocess(await decodeImage(await png(30, 20)), { ...cfg, doImageSplitting: false });
  assert.equal(p.numImages, 1);
  assert.equal(p.rows, 0);
  assert.equal(p.cols, 0);
});

test('formats: RGBA on white, 16-bit PNG, grayscale+alpha, JPEG, WebP, GIF first frame, BMP-free SVG', async () => {
  const rgba = Buffer.alloc(4 * 4 * 4); // fully transparent black -> white after flattening
  const t = await decodeImage(await sharp(rgba, { raw: { width: 4, height: 4, channels: 4 } }).png().toBuffer());
  assert.equal(t.data[0], 255);
  assert.equal((await decodeImage(await png(8, 8, { bits16: true }))).data.length, 8 * 8 * 3);
  const ga = await sharp(Buffer.alloc(8 * 8 * 2, 128), { raw: { width: 8, height: 8, channels: 2 } }).png().toBuffer();
  assert.equal((await decodeImage(ga)).data.length, 8 * 8 * 3);
  const jpg = await sharp(await png(16, 16)).jpeg().toBuffer();
  assert.equal((await decodeImage(jpg)).width, 16);
  const cmyk = await sharp(await png(16, 16)).toColourspace('cmyk').jpeg().toBuffer();
  assert.equal((await decodeImage(cmyk)).data.length, 16 * 16 * 3);
  const webp = await sharp(await png(16, 16)).webp().toBuffer();
  assert.equal((await decodeImage(webp)).height, 16);
  const gif = await sharp(await png(16, 16)).gif().toBuffer();
  assert.equal((await decodeImage(gif)).width, 16);
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect width="20" height="10" fill="red"/></svg>');
  const s = await decodeImage(svg);
  assert.deepEqual([s.width, s.height, s.data[0], s.data[1]], [20, 10, 255, 0]);
  assert.equal((await decodeImage(await png(1, 1))).width, 1);
});

async function rejects(input: string | Buffer, pattern: RegExp) {
  await assert.rejects(decodeImage(input), (e: unknown) => e instanceof BadInputError && pattern.test((e as Error).message));
}

test('bad images give one clear BadInputError each', async () => {
  const p = (name: string, data: Buffer | string) => {
    const f = join(dir, name);
    writeFileSync(f, data);
    return f;
  };
  await rejects(p('empty.png', Buffer.alloc(0)), /empty/);
  const good = await png(64, 64);
  await rejects(p('trunc.png', good.subarray(0, good.length >> 1)), /could not be decoded|not a supported/);
  const jpg = await sharp(good).jpeg().toBuffer();
  await rejects(p('trunc.jpg', jpg.subarray(0, jpg.length >> 1)), /could not be decoded|not a supported/);
  await rejects(p('text.png', 'hello, this is not an image\n'), /not a supported|could not be decoded/);
  await rejects(join(dir, 'missing.png'), /not found/);
  symlinkSync(join(dir, 'loop-b'), join(dir, 'loop-a'));
  symlinkSync(join(dir, 'loop-a'), join(dir, 'loop-b'));
  await rejects(join(dir, 'loop-a'), /link loop|not found/);
  await rejects(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>'), /external resource/);
  await rejects(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><image href="http://example.invalid/x.png"/></svg>'), /external resource/);
});

test('a header claiming 50,000 x 50,000 pixels is refused before decoding', async () => {
  // A valid PNG signature + IHDR chunk that claims 50000 x 50000, with no image data behind it.
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(50000, 0);
  ihdr.writeUInt32BE(50000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const chunk = Buffer.concat([Buffer.from([0, 0, 0, 13]), Buffer.from('IHDR'), ihdr, Buffer.alloc(4)]);
  const bomb = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk]);
  const t0 = performance.now();
  await rejects(bomb, /megapixel limit|pixel limit|could not be decoded/);
  assert.ok(performance.now() - t0 < 2000);
});

// ---- issue 8: more image cases ------------------------------------------------------------------------------

/** A w x h RGB image, left half `left`, right half `right`. */
function halves(w: number, h: number, left: number[], right: number[]): sharp.Sharp {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(x < w / 2 ? left : right, (y * w + x) * 3);
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } });
}

/** The normalised RGB of tile `f` at (x, y), back in 0..255. */
function tilePixel(p: import('../../runtime/model/preprocess.js').Preprocessed, f: number, x: number, y: number): number[] {
  const plane = p.tile * p.tile;
  return [0, 1, 2].map((c) => Math.round((p.pixelValues[(f * 3 + c) * plane + y * p.tile + x] * 0.5 + 0.5) * 255));
}

const near = (got: number[], want: number[], tol: number) => got.every((v, i) => Math.abs(v - want[i]) <= tol);

test('a 10,000 x 200 strip decodes and splits into one row of tiles, left half on the left', async () => {
  const red = [220, 20, 20];
  const blue = [20, 20, 220];
  const f = join(dir, 'strip.png');
  writeFileSync(f, await halves(10_000, 200, red, blue).png().toBuffer());
  const rgb = await decodeImage(f);
  assert.deepEqual([rgb.width, rgb.height], [10_000, 200]);
  for (const [c, T] of [[cfg, 64], [{ ...cfg, longestEdge: 512, tileSize: 256 }, 256]] as const) {
    const t0 = performance.now();
    const p = await preprocess(rgb, c);
    const ms = performance.now() - t0;
    // 10000 x 200 -> longest edge L: L x 4 (even) -> tiles: width L, height up to one tile -> 1 row x L/T cols
    assert.deepEqual([p.rows, p.cols, p.numImages, p.tile], [1, c.longestEdge / T, c.longestEdge / T + 1, T]);
    assert.equal(p.pixelValues.length, p.numImages * 3 * T * T);
    assert.ok(p.pixelMask.every((m) => m === 1));
    assert.ok(p.pixelValues.every((v) => Number.isFinite(v) && v >= -1 && v <= 1));
    // first tile from the left half, last tile from the right half, global image: both
    assert.ok(near(tilePixel(p, 0, T >> 1, T >> 1), red, 3), `tile 0: ${tilePixel(p, 0, T >> 1, T >> 1)}`);
    assert.ok(near(tilePixel(p, p.cols - 1, T >> 1, T >> 1), blue, 3), `last tile: ${tilePixel(p, p.cols - 1, T >> 1, T >> 1)}`);
    assert.ok(near(tilePixel(p, p.numImages - 1, 4, T >> 1), red, 3) && near(tilePixel(p, p.numImages - 1, T - 5, T >> 1), blue, 3));
    assert.ok(ms < 10_000, `preprocess took ${ms.toFixed(0)} ms`);
  }
});

test('an animated GIF: the first frame is used, whatever the others hold', async () => {
  const colours = { red: [230, 10, 10], green: [10, 200, 10], blue: [10, 10, 230] };
  const frame = (c: number[]) => sharp({ create: { width: 24, height: 16, channels: 3, background: { r: c[0], g: c[1], b: c[2] } } }).png().toBuffer();
  for (const order of [['red', 'green', 'blue'], ['blue', 'red'], ['green', 'blue', 'red']] as (keyof typeof colours)[][]) {
    const frames = await Promise.all(order.map((k) => frame(colours[k])));
    const gif = await sharp(frames, { join: { animated: true } }).gif({ delay: 100 }).toBuffer();
    const meta = await sharp(gif).metadata();
    assert.equal(meta.pages, order.length, 'really an animated GIF');
    const f = join(dir, `anim-${order.join('-')}.gif`);
    writeFileSync(f, gif);
    const rgb = await decodeImage(f);
    assert.deepEqual([rgb.width, rgb.height], [24, 16], 'one frame, not the stacked pages');
    const want = colours[order[0]];
    for (const [x, y] of [[0, 0], [12, 8], [23, 15]]) {
      const px = [...rgb.data.subarray((y * 24 + x) * 3, (y * 24 + x) * 3 + 3)];
      assert.ok(near(px, want, 12), `${order.join(',')}: pixel (${x}, ${y}) = ${px}, first frame is ${order[0]}`);
    }
    const p = await preprocess(rgb, cfg);
    assert.ok(near(tilePixel(p, 0, 10, 10), want, 12));
  }
});

test('a file deleted between pick and read: a not-found (or could-not-be-read) BadInputError, never another error', async () => {
  const bytes = await png(16, 16);
  // picked (it exists), then deleted before the read
  const f = join(dir, 'picked.png');
  writeFileSync(f, bytes);
  assert.equal((await decodeImage(f)).width, 16);
  rmSync(f);
  await rejects(f, /^image not found: .*picked\.png$/);
  // deleted while the read is in flight: lstat and readFile race the unlink; either message is fine, nothing else
  const seen = new Map<string, number>();
  for (let i = 0; i < 30; i++) {
    const g = join(dir, `race-${i}.png`);
    writeFileSync(g, bytes);
    const pending = decodeImage(g).then((r) => `decoded ${r.width}`, (e: unknown) => {
      assert.ok(e instanceof BadInputError, `got ${(e as Error).name}: ${(e as Error).message}`);
      assert.match((e as Error).message, /^image not found|could not be read/);
      return /not found/.test((e as Error).message) ? 'not found' : 'could not be read';
    });
    if (i % 2 === 0) rmSync(g);
    else setImmediate(() => rmSync(g));
    const what = await pending;
    seen.set(what, (seen.get(what) ?? 0) + 1);
  }
  console.log(`# deleted-during-read outcomes: ${[...seen].map(([k, v]) => `${k} x${v}`).join(', ')}`);
});

test('the SVG self-contained check cannot be sidestepped: long prefix, doctype, whitespace, gzip (svgz)', async () => {
  const { gzipSync } = await import('node:zlib');
  const body = '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><image href="http://example.invalid/x.png" width="8" height="8"/></svg>';
  const variants: [string, Buffer][] = [
    ['2 KB comment before <svg>', Buffer.from(`<?xml version="1.0"?><!--${'x'.repeat(2048)}-->${body}`)],
    ['html doctype', Buffer.from(`<!DOCTYPE html>${body}`)],
    ['4 KB of whitespace', Buffer.from(`${' '.repeat(4096)}${body}`)],
    ['UTF-8 BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)])],
    ['gzipped (svgz)', gzipSync(Buffer.from(body))],
    ['gzipped with a comment prefix', gzipSync(Buffer.from(`<!--${'y'.repeat(100)}-->${body}`))],
  ];
  for (const [name, b] of variants) {
    // sharp itself reads each of these as SVG ...
    assert.equal((await sharp(b).metadata()).format, 'svg', name);
    // ... so each must be refused by the policy, not drawn with the reference dropped
    await assert.rejects(decodeImage(b), (e: unknown) => e instanceof BadInputError && /external resource/.test((e as Error).message), name);
  }
  // self-contained svgz still draws
  const ok = gzipSync(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="6" height="4"><rect width="6" height="4" fill="#00f"/></svg>'));
  const s = await decodeImage(ok);
  assert.deepEqual([s.width, s.height, s.data[0], s.data[2]], [6, 4, 0, 255]);
});

test('a 50,000 x 50,000 header with valid CRCs reaches the pixel limit; a BMP gets its own message', async () => {
  const { crc32 } = await import('node:zlib').then((z) => ({ crc32: (z as unknown as { crc32?: (b: Buffer) => number }).crc32 }));
  const good = await png(8, 8);
  const c = Buffer.from(good);
  c.writeUInt32BE(50_000, 16);
  c.writeUInt32BE(50_000, 20);
  // fix the IHDR CRC (zlib.crc32 is Node >= 20.15; else a table), so libpng accepts the header and libvips sees the size
  const crc = crc32 ?? ((b: Buffer) => {
    let x = 0xffffffff;
    for (const byte of b) {
      x ^= byte;
      for (let k = 0; k < 8; k++) x = x & 1 ? 0xedb88320 ^ (x >>> 1) : x >>> 1;
    }
    return (x ^ 0xffffffff) >>> 0;
  });
  c.writeUInt32BE(crc(c.subarray(12, 29)) >>> 0, 29);
  const t0 = performance.now();
  await rejects(c, /^image is (50000 x 50000 pixels, )?over the 40 megapixel limit$/);
  assert.ok(performance.now() - t0 < 2000);
  // BMP (decoded by fast-bmp, as libvips has no BMP loader): a hand-made 4 x 4 24-bit file decodes, pixel for pixel;
  // its header is checked against the pixel limit before decoding.
  const bmp = Buffer.alloc(54 + 4 * 4 * 3);
  bmp.write('BM', 0, 'latin1');
  bmp.writeUInt32LE(bmp.length, 2);
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(4, 18);
  bmp.writeInt32LE(4, 22);
  bmp.writeUInt16LE(1, 26);
  bmp.writeUInt16LE(24, 28);
  for (let i = 0; i < 16; i++) bmp.writeUIntLE(0x102030, 54 + i * 3, 3); // stored B, G, R = 0x30, 0x20, 0x10
  const d = await decodeImage(bmp);
  assert.deepEqual([d.width, d.height, d.data[0], d.data[1], d.data[2]], [4, 4, 0x10, 0x20, 0x30]);
  const bigBmp = Buffer.from(bmp);
  bigBmp.writeInt32LE(50_000, 18);
  bigBmp.writeInt32LE(50_000, 22);
  await rejects(bigBmp, /^image is 50000 x 50000 pixels, over the 40 megapixel limit$/);
  await rejects(Buffer.from('GIF89a but not really'), /^(not a supported image|image could not be decoded)/);
});
