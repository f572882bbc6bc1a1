// Bookkeeping of which token positions each layer's cache slots hold, replayed from the same plans the store
// applies (so it cannot disagree with the cache). Feeds the panel's cache view through cacheStats.kept.
import type { LayerAssign } from './types.js';
import type { KeptPositions } from '../protocol.js';

export class KeptTracker {
  /**
   * Per layer, per KV-head group, per slot: the positions whose keys and values the slot holds (several after a
   * merge). One group while plans are per layer; a per-KV-head plan (types.ts) splits a layer into one per head.
   */
  private slots: number[][][][];
  private kinds = '';

  constructor(layers: number, private readonly firstPrompt: number) {
    this.slots = Array.from({ length: layers }, () => [[]]);
  }

  /** New entries appended at the end of every layer, one per kind character ('i', 't', 'g'). */
  append(kinds: string): void {
    const start = this.kinds.length;
    this.kinds += kinds;
    for (const layer of this.slots) for (const head of layer) for (let k = 0; k < kinds.length; k++) head.push([start + k]);
  }

  /**
   * Replays a plan: per layer, old slot j moves to slot assign[j] (merging with the others there) or is evicted.
   * A per-KV-head assign (heads x old length) moves each head's slots by its own row.
   */
  apply(plan: LayerAssign[]): void {
    this.slots = this.slots.map((groups, i) => {
      const assign = plan[i];
      const len = groups[0].length;
      const heads = len > 0 && assign.length > len && assign.length % len === 0 ? assign.length / len : 1;
      if (heads > 1 && groups.length === 1) groups = Array.from({ length: heads }, () => groups[0].map((m) => m.slice()));
      if (heads > 1 && groups.length !== heads) throw new Error(`kept positions: layer ${i} has ${groups.length} head groups, the plan ${heads}`);
      return groups.map((old, h) => {
        const next: number[][] = [];
        const base = heads > 1 ? h * len : 0;
        for (let j = 0; j < old.length; j++) {
          const a = assign[base + j];
          if (a < 0) continue;
          if (next[a]) next[a].push(...old[j]);
          else next[a] = old[j].slice();
        }
        return next.filter(Boolean);
      });
    });
  }

  /** One kind character per position seen so far. */
  get layout(): string {
    return this.kinds;
  }

  /** Entries per layer (equals the store's length). */
  get lengths(): number[] {
    return this.slots.map((l) => l[0].length);
  }

  /** Per layer, a position is kept ('k') or merged ('m') when any KV head of the layer holds it (per-head plans). */
  snapshot(): KeptPositions {
    const n = this.kinds.length;
    const layers = this.slots.map((groups) => {
      const state = new Array<string>(n).fill('-');
      for (const slots of groups) {
        for (const members of slots) {
          for (const p of members) if (state[p] !== 'k') state[p] = members.length > 1 ? 'm' : 'k';
        }
      }
      return state.join('');
    });
    return { kinds: this.kinds, layers, firstPrompt: this.firstPrompt };
  }
}
