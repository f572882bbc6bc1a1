// Finding the attention of each decoder layer: one Softmax per layer (unfused exports), or one com.microsoft
// MultiHeadAttention / GroupQueryAttention node per layer (fused graphs). Each site is tied, where the graph allows,
// to the present.{i} output its keys and values reach (its structural layer).
import type { onnx } from 'onnx-proto';
import { GraphIndex, MS, attrInt, isDefaultDomain, UnsupportedModelError } from './graphIndex.js';

export type AttentionKind = 'softmax' | 'mha' | 'gqa';

/** Thrown when a graph has no attention the rewrite can read scores from. Score-free policies still run. */
export class NoAttentionError extends Error {
  readonly code = 'NO_ATTENTION';
  constructor(message: string) {
    super(message);
    this.name = 'NoAttentionError';
  }
}

/** present.{i}.key / present.{i}.value (also present_key_values.{i}.key and `_` separators). */
const PRESENT_RE = /^present(?:[._]key_values)?[._](\d+)[._](key|value)$/;

/** Tensor name -> layer index for present.{i}.* graph outputs and the Identity chains that feed them. */
function presentAliases(graph: onnx.IGraphProto, idx: GraphIndex): { alias: Map<string, number>; keyLayers: Set<number> } {
  const alias = new Map<string, number>();
  const keyLayers = new Set<number>();
  for (const out of graph.output ?? []) {
    const m = PRESENT_RE.exec(out.name ?? '');
    if (!m) continue;
    const layer = Number(m[1]);
    if (m[2] === 'key') keyLayers.add(layer);
    let t: string | undefined = out.name!;
    for (let guard = 0; t && guard < 8; guard++) {
      alias.set(t, layer);
      const p = idx.producer.get(t);
      if (!p || !['Identity', 'Cast'].includes(p.node.opType ?? '')) break;
      t = p.node.input?.[0] ?? undefined;
    }
  }
  return { alias, keyLayers };
}

/**
 * Breadth-first search from `starts` (backward through producers or forward through consumers) for
 * the nearest tensor that is a present.{i} output. Returns i when a unique layer is nearest.
 */
function nearestPresent(
  starts: string[],
  direction: 'backward' | 'forward',
  idx: GraphIndex,
  alias: Map<string, number>,
  maxDepth: number,
): number | undefined {
  let frontier = starts.filter(Boolean);
  const seen = new Set(frontier);
  for (let depth = 0; depth <= maxDepth && frontier.length; depth++) {
    const found = new Set<number>();
    for (const t of frontier) {
      const l = alias.get(t);
      if (l !== undefined) found.add(l);
    }
    if (found.size === 1) return [...found][0];
    if (found.size > 1) return undefined;
    const next: string[] = [];
    for (const t of frontier) {
      const nodes =
        direction === 'backward'
          ? [idx.producer.get(t)?.node].filter((n): n is onnx.INodeProto => !!n)
          : (idx.consumers.get(t) ?? []).map((u) => u.node);
      for (const n of nodes) {
        const tensors = direction === 'backward' ? n.input ?? [] : n.output ?? [];
        for (const x of tensors) {
          if (x && !seen.has(x)) {
            seen.add(x);
            next.push(x);
          }
        }
      }
    }
    frontier = next;
  }
  return undefined;
}

export interface Site {
  node: onnx.INodeProto;
  /** Structural layer (via present outputs), when found. */
  structural?: number;
}

const PASS_THROUGH = new Set(['Cast', 'Dropout', 'Identity', 'Where']);

/** Whether a Softmax looks like rank-4 attention over its last axis; a reason when it does not. */
function softmaxRejectReason(node: onnx.INodeProto, idx: GraphIndex, opset: number): string | undefined {
  const rank = idx.ranks.get(node.input?.[0] ?? '') ?? idx.ranks.get(node.output?.[0] ?? '');
  if (rank !== undefined && rank !== 4) return `rank ${rank}`;
  const axis = attrInt(node, 'axis') ?? (opset >= 13 ? -1 : 1);
  if (!(axis === -1 || axis === 3)) return `axis ${axis}`;
  // The probabilities must reach the first input of a MatMul (probs @ V), possibly through casts etc.
  let frontier = [node.output?.[0] ?? ''];
  for (let depth = 0; depth < 4 && frontier.length; depth++) {
    const next: string[] = [];
    for (const t of frontier) {
      for (const u of idx.consumers.get(t) ?? []) {
        if (u.node.opType === 'MatMul' && isDefaultDomain(u.node.domain) && u.index === 0) return undefined;
        if (PASS_THROUGH.has(u.node.opType ?? '') && isDefaultDomain(u.node.domain)) {
          if (u.node.opType === 'Where' && u.index === 0) continue;
          next.push(u.node.output?.[0] ?? '');
        }
      }
    }
    frontier = next.filter(Boolean);
  }
  return 'does not feed a MatMul with the values';
}

/** The second input of the probs @ V MatMul that a Softmax feeds (for the structural search). */
function valueInputOf(node: onnx.INodeProto, idx: GraphIndex): string[] {
  const out: string[] = [];
  let frontier = [node.output?.[0] ?? ''];
  for (let depth = 0; depth < 4 && frontier.length; depth++) {
    const next: string[] = [];
    for (const t of frontier) {
      for (const u of idx.consumers.get(t) ?? []) {
        if (u.node.opType === 'MatMul' && u.index === 0) out.push(u.node.input?.[1] ?? '');
        else if (PASS_THROUGH.has(u.node.opType ?? '')) next.push(u.node.output?.[0] ?? '');
      }
    }
    frontier = next.filter(Boolean);
  }
  return out.filter(Boolean);
}


export interface FoundSites {
  kind: AttentionKind;
  sites: Site[];
  /** How many present.{i}.key outputs the graph has (its layers), 0 when none are named so. */
  presentLayers: number;
}

/** The attention sites of a decoder graph; throws NoAttentionError when there are none to read. */
export function findSites(graph: onnx.IGraphProto, idx: GraphIndex, opset: number, src: string): FoundSites {
  const { alias, keyLayers } = presentAliases(graph, idx);
  const nPresent = keyLayers.size;
  const nodes = graph.node ?? [];
  const gqa = nodes.filter((n) => n.opType === 'GroupQueryAttention' && n.domain === MS);
  const mha = nodes.filter((n) => n.opType === 'MultiHeadAttention' && n.domain === MS);
  if (gqa.length && mha.length) {
    throw new UnsupportedModelError(`${src} mixes GroupQueryAttention and MultiHeadAttention nodes`);
  }
  if (gqa.length || mha.length) {
    const sites = (gqa.length ? gqa : mha).map((node) => ({
      node,
      structural:
        alias.get(node.output?.[1] ?? '') ??
        alias.get(node.output?.[2] ?? '') ??
        nearestPresent([node.output?.[1] ?? '', node.output?.[2] ?? ''], 'forward', idx, alias, 4),
    }));
    return { kind: gqa.length ? 'gqa' : 'mha', sites, presentLayers: nPresent };
  }
  return { kind: 'softmax', sites: softmaxSites(nodes, idx, opset, alias, nPresent, src), presentLayers: nPresent };
}

function softmaxSites(nodes: onnx.INodeProto[], idx: GraphIndex, opset: number, alias: Map<string, number>, nPresent: number, src: string): Site[] {
  const rejected: string[] = [];
  let sites: Site[] = [];
  for (const node of nodes.filter((n) => n.opType === 'Softmax' && isDefaultDomain(n.domain))) {
    const why = softmaxRejectReason(node, idx, opset);
    if (why) {
      rejected.push(`${node.name || node.output?.[0]} (${why})`);
      continue;
    }
    sites.push({ node, structural: nearestPresent([...(node.input ?? []), ...valueInputOf(node, idx)], 'backward', idx, alias, 12) });
  }
  // Elimination: more candidates than layers -> keep those tied to a present output.
  if (nPresent && sites.length > nPresent) {
    const tied = sites.filter((s) => s.structural !== undefined);
    if (tied.length === nPresent) sites = tied;
  }
  if (!sites.length) {
    const others = nodes.filter((n) => /Attention/.test(n.opType ?? '')).map((n) => `${n.domain || 'ai.onnx'}.${n.opType}`);
    throw new NoAttentionError(
      `no attention found in ${src}: no attention Softmax, com.microsoft.MultiHeadAttention or ` +
        `com.microsoft.GroupQueryAttention node` +
        (rejected.length ? `; Softmax nodes rejected: ${rejected.slice(0, 5).join(', ')}` : '') +
        (others.length ? `; unsupported attention ops: ${[...new Set(others)].join(', ')}` : ''),
    );
  }
  return sites;
}
