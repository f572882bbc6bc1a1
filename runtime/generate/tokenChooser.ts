// Choosing the next token from the logits: teacher forcing (evaluation), end-token masking (fixed-length
// benchmarks), then the sampler (greedy, or temperature/top-p with a seed). Like a chain of logits processors.
import type { GenerateOptions } from '../protocol.js';
import { logProb, makeSampler } from './sampling.js';

export class TokenChooser {
  /** How many tokens the turn may produce. */
  readonly steps: number;
  /** With forcing: the natural-log probability of each forced token. */
  readonly forcedLogProbs: number[] = [];
  private readonly sample: (logits: Float32Array) => number;

  constructor(
    private readonly gen: GenerateOptions,
    private readonly eos: ReadonlySet<number>,
    private readonly force?: number[],
  ) {
    this.steps = force ? force.length : gen.maxNewTokens;
    this.sample = makeSampler(gen);
  }

  choose(logits: Float32Array, step: number): number {
    if (this.force) {
      const token = this.force[step];
      this.forcedLogProbs.push(logProb(logits, token));
      return token;
    }
    // ignoreEos masks the end tokens, as min_new_tokens does elsewhere: the answer goes on with the best other
    // token instead of feeding an end token back.
    if (this.gen.ignoreEos) for (const id of this.eos) logits[id] = -Infinity;
    return this.sample(logits);
  }

  get forcing(): boolean {
    return this.force !== undefined;
  }

  /** Whether `token` ends the answer (never while forcing or ignoring end tokens). */
  ends(token: number): boolean {
    return !this.force && !this.gen.ignoreEos && this.eos.has(token);
  }
}
