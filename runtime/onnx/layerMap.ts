// Which decoder layer each attention site belongs to: by the present.{i} output it reaches (structural), else by
// the layer index in its names, else by its place in the graph's order.
import type { onnx } from 'onnx-proto';
import { GraphIndex } from './graphIndex.js';
import { NoAttentionError, type FoundSites } from './attentionSites.js';

/** Layer index inside node or tensor names: /model/layers.3/..., model.layers.3.self_attn, blocks_3, h.3. */
const LAYER_NAME_RE = /(?:^|[/._:])(?:layers?|blocks?|h)[._/:-]?(\d+)(?=$|[/._:])/i;

function layerFromNames(node: onnx.INodeProto): number | undefined {
  for (const s of [node.name ?? '', ...(node.output ?? []), ...(node.input ?? [])]) {
    const m = LAYER_NAME_RE.exec(s);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** Whether `layers` is exactly a permutation of 0..n-1. */
function isBijection(layers: (number | undefined)[], n: number): layers is number[] {
  if (layers.length !== n) return false;
  const seen = new Set<number>();
  for (const l of layers) {
    if (l === undefined || l < 0 || l >= n || seen.has(l)) return false;
    seen.add(l);
  }
  return true;
}

/** Layer of each site (a permutation of 0..n-1), n = the graph's present layers or its sites. */
export function assignLayers(found: FoundSites, idx: GraphIndex, src: string): number[] {
  const { sites, kind, presentLayers } = found;
  const n = presentLayers || sites.length;
  if (sites.length !== n) {
    throw new NoAttentionError(`no attention found in ${src}: ${sites.length} ${kind} attention site(s) for ${presentLayers} present.{i}.key outputs`);
  }
  const structural = sites.map((s) => s.structural);
  if (isBijection(structural, n)) return structural;
  const named = sites.map((s) => layerFromNames(s.node));
  if (isBijection(named, n)) return named;
  const order = sites.map((s, i) => ({ i, o: idx.nodeOrder.get(s.node) ?? 0 })).sort((a, b) => a.o - b.o);
  const layerOf = new Array<number>(n);
  order.forEach(({ i }, rank) => (layerOf[i] = rank));
  return layerOf;
}
