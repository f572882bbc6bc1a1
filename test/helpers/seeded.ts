// Reproducible test inputs: n values uniform in [-scale, scale] from a linear congruential generator (no Math.random,
// so a failure replays).
export function seeded(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return ((s / 2 ** 32) * 2 - 1) * scale;
  });
}
