// Whether a model fits in the memory this process can have, checked before any session is created: a model too
// large fails at load with a clear message instead of being killed halfway (the worker lives on).
import { statSync } from 'node:fs';
import * as os from 'node:os';
import { BadInputError } from '../errors.js';

/**
 * ONNX Runtime's CPU sessions hold the weights once (prepacked), plus activations and the KV cache: about 1.5 x
 * the files for the models measured here (docs/benchmarks.md: peak RSS against file sizes).
 */
export const CPU_MEMORY_PER_WEIGHT_BYTE = 1.5;

/** Bytes this process may still take: the smaller of the machine's available memory and its cgroup's room. */
export function availableBytes(): number {
  const free = os.freemem(); // MemAvailable on Linux
  const limit = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  if (!limit || limit >= Number.MAX_SAFE_INTEGER) return free;
  return Math.min(free, Math.max(0, limit - process.memoryUsage.rss()));
}

/** Throws a BadInputError when the model's files need more memory than is available (CPU sessions). */
export function checkFitsInMemory(files: string[], available = availableBytes()): void {
  const weights = files.reduce((n, f) => n + statSync(f).size, 0);
  const need = weights * CPU_MEMORY_PER_WEIGHT_BYTE;
  if (need > available) {
    const gb = (b: number) => (b / 1024 ** 3).toFixed(1);
    throw new BadInputError(
      `this model needs about ${gb(need)} GB of memory (${gb(weights)} GB of weights) but ${gb(available)} GB are free: ` +
        'close other programs, or choose a smaller model or dtype (q4)',
    );
  }
}
