// Idefics3 image preprocessing with sharp (libvips): decode, RGB, resize to the configured longest edge, resize to
// multiples of the tile size, split into tiles plus a global image, rescale and normalize. The resize chain mirrors
// the Python processor step by step, each step resampling 8-bit RGB as Pillow does (resample.ts); sharp decodes.
import { readFile, lstat, realpath } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import { BadInputError } from '../errors.js';
import type { ImageProcessorConfig } from './modelFolder.js';
import { BICUBIC, BILINEAR, LANCZOS, resampleRgb, type Filter } from './resample.js';

/** Decompression-bomb guard: refuse images whose header claims more pixels than this, before decoding. */
export const MAX_INPUT_PIXELS = 40_000_000;
/** Files larger than this are refused before they are read. */
export const MAX_IMAGE_BYTES = 64 * 1024 * 1024;
/** The Python processor's absolute maximum edge (MAX_IMAGE_SIZE). */
const MAX_EDGE = 4096;

export interface Rgb {
  data: Buffer;
  width: number;
  height: number;
}

export interface Preprocessed {
  /** float32 [1, numImages, 3, tile, tile] */
  pixelValues: Float32Array;
  /** bool as uint8 [1, numImages, tile, tile] */
  pixelMask: Uint8Array;
  numImages: number;
  tile: number;
  /** Tile rows and columns; 0 x 0 when the image was not split. */
  rows: number;
  cols: number;
}

const KERNELS: Record<number, keyof sharp.KernelEnum> = { 0: 'nearest', 1: 'lanczos3', 2: 'linear', 3: 'cubic' };

/** Reads and decodes an image file (or bytes) to 8-bit sRGB, transparent areas on white. */
export async function decodeImage(input: string | Buffer): Promise<Rgb> {
  return decodeImageBytes(await readImageBytes(input));
}

/** An image file's bytes (or the bytes given), refused with one clear line when the file cannot be an image. */
export async function readImageBytes(input: string | Buffer): Promise<Buffer> {
  let bytes: Buffer;
  if (typeof input === 'string') {
    let st;
    try {
      st = await lstat(input);
      if (st.isSymbolicLink()) st = await lstat(await realpath(input));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new BadInputError(`image ${input} is a symbolic link loop`);
      throw new BadInputError(`image not found: ${input}`);
    }
    if (!st.isFile()) throw new BadInputError(`image ${input} is not a file`);
    if (st.size === 0) throw new BadInputError(`image ${input} is empty (0 bytes)`);
    if (st.size > MAX_IMAGE_BYTES) throw new BadInputError(`image ${input} is larger than ${MAX_IMAGE_BYTES >> 20} MB`);
    try {
      bytes = await readFile(input);
    } catch {
      throw new BadInputError(`image ${input} could not be read`);
    }
  } else {
    bytes = input;
  }
  if (bytes.length === 0) throw new BadInputError('image is empty (0 bytes)');
  return bytes;
}

/** Decodes image bytes to 8-bit sRGB, transparent areas on white. */
export async function decodeImageBytes(bytes: Buffer): Promise<Rgb> {
  const svgChecked = looksLikeSvg(bytes);
  if (svgChecked) checkSvgSelfContained(svgText(bytes));
  try {
    const img = isBmp(bytes)
      ? sharp(...(await decodeBmp(bytes)))
      : sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error', pages: 1, page: 0 });
    const meta = await img.metadata();
    // Whatever libvips itself takes for SVG gets the self-contained check before anything is drawn.
    if (meta.format === 'svg' && !svgChecked) checkSvgSelfContained(svgText(bytes));
    if (!meta.width || !meta.height) throw new BadInputError('image has no size');
    if (meta.width * meta.height > MAX_INPUT_PIXELS) {
      throw new BadInputError(`image is ${meta.width} x ${meta.height} pixels, over the ${MAX_INPUT_PIXELS / 1e6} megapixel limit`);
    }
    const { data, info } = await img
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoder returned ${info.channels} channels`);
    return { data, width: info.width, height: info.height };
  } catch (e) {
    if (e instanceof BadInputError) throw e;
    const msg = (e as Error).message ?? String(e);
    if (/pixel limit/i.test(msg)) throw new BadInputError(`image is over the ${MAX_INPUT_PIXELS / 1e6} megapixel limit`);
    if (/unsupported image format/i.test(msg)) throw new BadInputError('not a supported image (PNG, JPEG, WebP, GIF, BMP, SVG)');
    // libvips sometimes leaves its reason empty ("Unknown error") or ends it with a colon and nothing after.
    const detail = msg.split('\n')[0].trim().replace(/[:\s]+$/, '');
    if (!detail || /^unknown error$/i.test(detail)) throw new BadInputError('image could not be decoded: the file is corrupt or truncated');
    throw new BadInputError(`image could not be decoded: ${detail}`);
  }
}

const isBmp = (b: Buffer) => b.length >= 26 && b[0] === 0x42 && b[1] === 0x4d;

/**
 * libvips (as sharp ships it) has no BMP loader, so BMP goes through fast-bmp, a maintained decoder, into sharp as
 * raw pixels. The header's size is checked against the pixel limit before anything is decoded.
 */
async function decodeBmp(bytes: Buffer): Promise<[Buffer, sharp.SharpOptions]> {
  const w = Math.abs(bytes.readInt32LE(18));
  const h = Math.abs(bytes.readInt32LE(22));
  if (w === 0 || h === 0) throw new BadInputError('BMP image has no size');
  if (w * h > MAX_INPUT_PIXELS) throw new BadInputError(`image is ${w} x ${h} pixels, over the ${MAX_INPUT_PIXELS / 1e6} megapixel limit`);
  let img;
  try {
    const { decode } = await import('fast-bmp');
    img = decode(bytes);
  } catch (e) {
    throw new BadInputError(`BMP image could not be decoded: ${(e as Error).message.split('\n')[0] || 'corrupt or truncated'}`);
  }
  const channels = img.channels;
  const bits = img.bitsPerPixel;
  const pixels = img.data as Uint8Array;
  if (![1, 3, 4].includes(channels) || bits / channels !== 8 || !(pixels instanceof Uint8Array) || pixels.length < img.width * img.height * channels) {
    throw new BadInputError(`BMP with ${bits} bits per pixel is not supported; convert it to PNG`);
  }
  const data = Buffer.from(pixels.buffer, pixels.byteOffset, img.width * img.height * channels);
  return [data, { raw: { width: img.width, height: img.height, channels: channels as 1 | 3 | 4 }, limitInputPixels: MAX_INPUT_PIXELS }];
}

/**
 * libvips takes for SVG any text whose <svg element comes after comments, a doctype or whitespace of any length,
 * and gzipped SVG (svgz): all of it gets the self-contained check.
 */
function looksLikeSvg(bytes: Buffer): boolean {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return true;
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (i < bytes.length && (bytes[i] === 0x20 || (bytes[i] >= 0x09 && bytes[i] <= 0x0d))) i++;
  return bytes[i] === 0x3c && /<svg/i.test(bytes.toString('latin1'));
}

/** The text of an SVG, gunzipped (bounded) when it is svgz. */
function svgText(bytes: Buffer): string {
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes.toString('utf8');
  try {
    return gunzipSync(bytes, { maxOutputLength: MAX_IMAGE_BYTES }).toString('utf8');
  } catch (e) {
    const big = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    throw new BadInputError(big ? `compressed SVG inflates beyond ${MAX_IMAGE_BYTES >> 20} MB; refused` : 'compressed data is corrupt (not a supported image)');
  }
}

/** SVGs may only draw self-contained content: no external files, no URLs (no network, ever). */
function checkSvgSelfContained(text: string): void {
  const refs = text.matchAll(/(?:href|src)\s*=\s*["']([^"']*)["']|url\(\s*["']?([^"')]*)/gi);
  for (const m of refs) {
    const ref = (m[1] ?? m[2] ?? '').trim();
    if (ref === '' || ref.startsWith('#') || ref.toLowerCase().startsWith('data:')) continue;
    throw new BadInputError(`SVG references an external resource (${ref.slice(0, 60)}); only self-contained SVGs are drawn`);
  }
  if (/<!ENTITY/i.test(text)) throw new BadInputError('SVG declares XML entities; refused');
}

const FILTERS: Record<number, Filter> = { 1: LANCZOS, 2: BILINEAR, 3: BICUBIC };

async function resize(img: Rgb, width: number, height: number, resample: number): Promise<Rgb> {
  if (img.width === width && img.height === height) return img; // PIL returns a copy for the same size
  const filter = FILTERS[resample];
  if (filter) {
    // Pillow's algorithm (resample.ts): libvips enlarges with an interpolator, and reduces by 2x or more with a box
    // shrink before its kernel, both off from what a Pillow-trained model saw.
    const data = resampleRgb(img.data, img.width, img.height, width, height, filter);
    return { data: Buffer.from(data.buffer, data.byteOffset, data.byteLength), width, height };
  }
  const data = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { kernel: KERNELS[resample] ?? 'lanczos3', fit: 'fill' })
    .raw()
    .toBuffer();
  return { data, width, height };
}

/** Longest edge to maxLen, aspect kept, the other side rounded up to even (as the Python processor does). */
export function sizeForLongestEdge(height: number, width: number, maxLen: number): [number, number] {
  const aspect = width / height;
  if (width >= height) {
    width = maxLen;
    height = Math.trunc(width / aspect);
    if (height % 2 !== 0) height += 1;
  } else {
    height = maxLen;
    width = Math.trunc(height * aspect);
    if (width % 2 !== 0) width += 1;
  }
  height = Math.max(height, 1);
  width = Math.max(width, 1);
  // then below the absolute maximum edge
  const a2 = width / height;
  if (width >= height && width > MAX_EDGE) {
    width = MAX_EDGE;
    height = Math.trunc(width / a2);
  } else if (height > width && height > MAX_EDGE) {
    height = MAX_EDGE;
    width = Math.trunc(height * a2);
  }
  return [Math.max(height, 1), Math.max(width, 1)];
}

/** Both sides up to multiples of the tile size, aspect kept through the first side. */
export function sizeForTiles(height: number, width: number, tile: number): [number, number] {
  const aspect = width / height;
  if (width >= height) {
    width = Math.ceil(width / tile) * tile;
    height = Math.trunc(width / aspect);
    height = Math.ceil(height / tile) * tile;
  } else {
    height = Math.ceil(height / tile) * tile;
    width = Math.trunc(height * aspect);
    width = Math.ceil(width / tile) * tile;
  }
  return [height, width];
}

export async function preprocess(rgb: Rgb, cfg: ImageProcessorConfig): Promise<Preprocessed> {
  let img = rgb;
  if (cfg.doResize) {
    const [h, w] = sizeForLongestEdge(img.height, img.width, cfg.longestEdge);
    img = await resize(img, w, h, cfg.resample);
  }
  const T = cfg.tileSize;
  const frames: Rgb[] = [];
  let rows = 0;
  let cols = 0;
  if (cfg.doImageSplitting) {
    const [h, w] = sizeForTiles(img.height, img.width, T);
    img = await resize(img, w, h, cfg.resample);
    if (img.height > T || img.width > T) {
      rows = Math.floor((img.height - T) / T) + 1;
      cols = Math.floor((img.width - T) / T) + 1;
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) frames.push(crop(img, c * T, r * T, T, T));
      frames.push(await resize(img, T, T, cfg.resample));
    } else {
      frames.push(img);
    }
  } else {
    frames.push(await resize(img, T, T, cfg.resample));
  }

  const n = frames.length;
  const plane = T * T;
  const pixelValues = new Float32Array(n * 3 * plane);
  const pixelMask = new Uint8Array(n * plane);
  const scale = cfg.doRescale ? cfg.rescaleFactor : 1;
  for (let f = 0; f < n; f++) {
    const fr = frames[f];
    // Frames smaller than the tile (an unsplit small image) are padded with zeros, masked out.
    for (let y = 0; y < fr.height; y++) {
      for (let x = 0; x < fr.width; x++) {
        const src = (y * fr.width + x) * 3;
        const dst = y * T + x;
        pixelMask[f * plane + dst] = 1;
        for (let ch = 0; ch < 3; ch++) {
          let v = fr.data[src + ch] * scale;
          if (cfg.doNormalize) v = (v - cfg.mean[ch]) / cfg.std[ch];
          pixelValues[(f * 3 + ch) * plane + dst] = v;
        }
      }
    }
  }
  return { pixelValues, pixelMask, numImages: n, tile: T, rows, cols };
}

function crop(img: Rgb, x0: number, y0: number, w: number, h: number): Rgb {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) img.data.copy(data, y * w * 3, ((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + w) * 3);
  return { data, width: w, height: h };
}
