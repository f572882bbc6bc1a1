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
