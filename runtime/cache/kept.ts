// Bookkeeping of which token positions each layer's cache slots hold, replayed from the same plans the store
// applies (so it cannot disagree with the cache). Feeds the panel's cache view through cacheStats.kept.
import type { LayerAssign } from './types.js';
import type { KeptPositions } from '../protocol.js';

export class KeptTracker {
  /** Per layer, per slot: the positions whose keys and values the slot holds (several after a merge). */
  private slots: number[][][];
  private kinds = '';

  constructor(layers: number, private readonly firstPrompt: number) {
    this.slots = Array.from({ length: layers }, () => []);
  }

  /** New entries appended at the end of every layer, one per kind character ('i', 't', 'g'). */
  append(kinds: string): void {
    const start = this.kinds.length;
    this.kinds += kinds;
    for (const layer of this.slots) for (let k = 0; k < kinds.length; k++) layer.push([start + k]);
  }

  /** Replays a plan: per layer, old slot j moves to slot assign[j] (merging with the others there) or is evicted. */
  apply(plan: LayerAssign[]): void {
    this.slots = this.slots.map((old, i) => {
      const assign = plan[i];
      const next: number[][] = [];
      for (let j = 0; j < old.length; j++) {
        const a = assign[j];
        if (a < 0) continue;
        if (next[a]) next[a].push(...old[j]);
        else next[a] = old[j].slice();
      }
      return next.filter(Boolean);
    });
  }

  /** One kind character per position seen so far. */
  get layout(): string {
    return this.kinds;
  }

  /** Entries per layer (equals the store's length). */
  get lengths(): number[] {
    return this.slots.map((l) => l.length);
  }

  snapshot(): KeptPositions {
    const n = this.kinds.length;
    const layers = this.slots.map((slots) => {
      const state = new Array<string>(n).fill('-');
      for (const members of slots) for (const p of members) state[p] = members.length > 1 ? 'm' : 'k';
      return state.join('');
    });
    return { kinds: this.kinds, layers, firstPrompt: this.firstPrompt };
  }
}
