// Separable resampling of 8-bit RGB with Pillow's algorithm (filter support scaled by the reduction factor,
// pixel-centre alignment, coefficients normalised then rounded to 22-bit fixed point, one uint8 rounding per pass,
// horizontal pass first). libvips (sharp) reduces images exactly like Pillow, but enlarges with an interpolator
// instead of the Lanczos kernel, a systematic difference from what Pillow-trained models saw. So enlargements
// are done here; reductions stay in libvips.

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

export type Filter = { support: number; f: (x: number) => number };

const sinc = (x: number) => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));
export const LANCZOS: Filter = { support: 3, f: (x) => (x > -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) };
export const BILINEAR: Filter = { support: 1, f: (x) => Math.max(0, 1 - Math.abs(x)) };
export const BICUBIC: Filter = {
  support: 2,
  f: (x) => {
    const a = -0.5;
    x = Math.abs(x);
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
  },
};

interface Coeffs {
  bounds: Int32Array; // [xmin, count] per output
  k: Float64Array; // ksize per output, fixed point
  ksize: number;
}

function coefficients(inSize: number, outSize: number, filter: Filter): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const k = new Float64Array(outSize * ksize);
  const ss = 1 / filterscale;
  const tmp = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const count = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < count; x++) ww += tmp[x] = filter.f((x + xmin - center + 0.5) * ss);
    for (let x = 0; x < count; x++) {
      const w = ww === 0 ? tmp[x] : tmp[x] / ww;
      k[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * ONE : 0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = count;
  }
  return { bounds, k, ksize };
}

const clip8 = (ss: number) => (ss <= 0 ? 0 : ss >= 256 * ONE ? 255 : Math.floor(ss / ONE));

function horizontal(src: Uint8Array, w: number, h: number, outW: number, c: Coeffs): Uint8Array {
  const out = new Uint8Array(outW * h * 3);
  for (let y = 0; y < h; y++) {
    const row = y * w * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = c.bounds[xx * 2];
      const n = c.bounds[xx * 2 + 1];
      const kb = xx * c.ksize;
      let s0 = ONE / 2;
      let s1 = ONE / 2;
      let s2 = ONE / 2;
      for (let x = 0; x < n; x++) {
        const kk = c.k[kb + x];
        const p = row + (xmin + x) * 3;
        s0 += src[p] * kk;
        s1 += src[p + 1] * kk;
        s2 += src[p + 2] * kk;
      }
      const o = (y * outW + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

function vertical(src: Uint8Array, w: number, h: number, outH: number, c: Coeffs): Uint8Array {
  const out = new Uint8Array(w * outH * 3);
  const stride = w * 3;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = c.bounds[yy * 2];
    const n = c.bounds[yy * 2 + 1];
    const kb = yy * c.ksize;
    for (let i = 0; i < stride; i++) {
      let s = ONE / 2;
      for (let y = 0; y < n; y++) s += src[(ymin + y) * stride + i] * c.k[kb + y];
      out[yy * stride + i] = clip8(s);
    }
  }
  return out;
}

/** Resizes packed 8-bit RGB to outW x outH exactly as Pillow's Image.resize does with the given filter. */
export function resampleRgb(src: Uint8Array, w: number, h: number, outW: number, outH: number, filter: Filter = LANCZOS): Uint8Array {
  let data = src;
  if (outW !== w) data = horizontal(data, w, h, outW, coefficients(w, outW, filter));
  if (outH !== h) data = vertical(data, outW, h, outH, coefficients(h, outH, filter));
  return data === src ? src.slice() : data;
}
