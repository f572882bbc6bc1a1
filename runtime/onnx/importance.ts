// Derives, from a decoder ONNX graph in the SmolVLM layout, a decoder that additionally outputs per
// layer i `attn_importance.{i}`: float32 [batch, total_len], the head-averaged attention probabilities
// of the current queries summed over those queries (prefill: column sums; decode step: the step's row).
//
// Three kinds of graphs are handled:
//  - 'softmax': unfused attention, one Softmax per layer over [B, heads, S, T] (torch.onnx legacy export);
//  - 'mha': com.microsoft MultiHeadAttention; its optional 4th output `qk` holds the scaled, masked
//    scores before softmax, so a Softmax is added;
//  - 'gqa': com.microsoft GroupQueryAttention; attribute qk_output=2 makes its 4th output `output_qk`
//    the softmax probabilities.
// Each probability tensor is then reduced: Cast to float32 if needed, summed over the queries (a MatMul with a row
// of ones), averaged over the heads. No `vscode` import: this module runs in the worker, the CLI and tests.

import { onnx } from 'onnx-proto';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

/** Bump when the rewrite's output changes: derived files of older versions are then ignored. */
// 15: issue 15 added the attn_window.* outputs (a distinctive number: other branches bump this too and share the cache).
export const REWRITE_VERSION = 15;
export const IMPORTANCE_PREFIX = 'attn_importance.';
/**
 * Per layer i, `attn_window.{i}`: float32 [batch, heads, min(W, queries), total_len], the attention probabilities of
 * the last W = WINDOW_QUERIES queries of the run, per query head (not averaged): the observation window SnapKV and the
 * question-aware Elastic score by (prefill), or the step's own row per head (decode). Opset >= 10 (Slice with inputs).
 */
export const WINDOW_PREFIX = 'attn_window.';
export const WINDOW_QUERIES = 64;

export type AttentionKind = 'softmax' | 'mha' | 'gqa';

export interface RewriteResult {
  model: onnx.ModelProto;
  kind: AttentionKind;
  layers: number;
  /** `attn_importance.{i}` for i = 0..layers-1, in layer order. */
  outputNames: string[];
}

export interface DerivedDecoder {
  /** The derived model file (inside the cache folder). */
  path: string;
  kind: AttentionKind;
  layers: number;
  outputNames: string[];
  /** True when the file came from the cache and no rewrite ran. */
  cached: boolean;
  /** sha256 (hex) of the source file. */
  sourceSha256: string;
}

/** Thrown when a graph has no attention the rewrite can read scores from. Score-free policies still run. */
export class NoAttentionError extends Error {
  readonly code = 'NO_ATTENTION';
  constructor(message: string) {
    super(message);
    this.name = 'NoAttentionError';
  }
}

/** Thrown for graphs the rewrite does not support (external data, mixed attention ops, ...). */
export class UnsupportedModelError extends Error {
  readonly code = 'UNSUPPORTED_MODEL';
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedModelError';
  }
}

type Long = { toNumber(): number };
const num = (v: number | Long | null | undefined): number =>
  v == null ? 0 : typeof v === 'number' ? v : v.toNumber();

const isDefaultDomain = (d: string | null | undefined) => !d || d === 'ai.onnx';
const MS = 'com.microsoft';
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

/** present.{i}.key / present.{i}.value (also present_key_values.{i}.key and `_` separators). */
const PRESENT_RE = /^present(?:[._]key_values)?[._](\d+)[._](key|value)$/;
/** Layer index inside node or tensor names: /model/layers.3/..., model.layers.3.self_attn, blocks_3, h.3. */
const LAYER_NAME_RE = /(?:^|[/._:])(?:layers?|blocks?|h)[._/:-]?(\d+)(?=$|[/._:])/i;

// ------------------------------------------------------------------------------------------------
// Graph index

interface Use {
  node: onnx.INodeProto;
  index: number;
}

class GraphIndex {
  readonly producer = new Map<string, Use>();
  readonly consumers = new Map<string, Use[]>();
  readonly names = new Set<string>();
  readonly ranks = new Map<string, number>();
  readonly nodeOrder = new Map<onnx.INodeProto, number>();
  /** Element types known from inputs, outputs, value_info and initializers. */
  readonly elemTypes = new Map<string, number>();

  constructor(readonly graph: onnx.IGraphProto) {
    for (const vi of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
      const et = vi.type?.tensorType?.elemType;
      if (vi.name && et) this.elemTypes.set(vi.name, et);
    }
    for (const t of graph.initializer ?? []) if (t.name && t.dataType) this.elemTypes.set(t.name, t.dataType);
    (graph.node ?? []).forEach((node, i) => {
      this.nodeOrder.set(node, i);
      if (node.name) this.names.add(node.name);
      (node.output ?? []).forEach((t, index) => {
        if (t) {
          this.producer.set(t, { node, index });
          this.names.add(t);
        }
      });
      (node.input ?? []).forEach((t, index) => {
        if (!t) return;
        let list = this.consumers.get(t);
        if (!list) this.consumers.set(t, (list = []));
        list.push({ node, index });
      });
    });
    for (const vi of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
      if (!vi.name) continue;
      this.names.add(vi.name);
      const shape = vi.type?.tensorType?.shape;
      if (shape?.dim) this.ranks.set(vi.name, shape.dim.length);
    }
    for (const t of graph.initializer ?? []) {
      if (t.name) {
        this.names.add(t.name);
        this.ranks.set(t.name, (t.dims ?? []).length);
      }
    }
  }

  /** A tensor or node name not used yet in the graph (and reserved from now on). */
  unique(base: string): string {
    let name = base;
    for (let k = 1; this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }
}

function attrInt(node: onnx.INodeProto, name: string): number | undefined {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  if (!a) return undefined;
  if (a.type === onnx.AttributeProto.AttributeType.INT || a.i != null) return num(a.i);
  return undefined;
}

function setAttrInt(node: onnx.INodeProto, name: string, value: number): void {
  const attrs = (node.attribute ??= []);
  const i = attrs.findIndex((x) => x.name === name);
  const a = onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: value });
  if (i >= 0) attrs[i] = a;
  else attrs.push(a);
}

function defaultOpset(model: onnx.IModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => isDefaultDomain(o.domain));
  if (!entry) throw new UnsupportedModelError('model imports no default-domain (ai.onnx) opset');
  return num(entry.version);
}

// ------------------------------------------------------------------------------------------------
// External data

function hasExternalData(graph: onnx.IGraphProto | null | undefined): boolean {
  if (!graph) return false;
  const ext = (t: onnx.ITensorProto | null | undefined) => !!t && t.dataLocation === EXTERNAL;
  if ((graph.initializer ?? []).some(ext)) return true;
  if ((graph.sparseInitializer ?? []).some((s) => ext(s.values) || ext(s.indices))) return true;
  for (const node of graph.node ?? []) {
    for (const a of node.attribute ?? []) {
      if (ext(a.t) || (a.tensors ?? []).some(ext)) return true;
      if (hasExternalData(a.g) || (a.graphs ?? []).some((g) => hasExternalData(g))) return true;
    }
  }
  return false;
}

// ------------------------------------------------------------------------------------------------
// Present outputs and layer mapping

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

// ------------------------------------------------------------------------------------------------
// Finding attention

interface Site {
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

// ------------------------------------------------------------------------------------------------
// The rewrite

export interface RewriteOptions {
  /** Used in error messages (the file name). */
  source?: string;
}

/**
 * Adds `attn_importance.{i}` outputs to a decoder graph, in place on `model` (which is also returned).
 * Throws NoAttentionError when no attention is found, UnsupportedModelError for unsupported graphs.
 */
export function rewriteForImportance(model: onnx.ModelProto, opts: RewriteOptions = {}): RewriteResult {
  const src = opts.source ?? '<model>';
  const graph = model.graph;
  if (!graph) throw new UnsupportedModelError(`${src} has no graph`);
  if (hasExternalData(graph)) {
    throw new UnsupportedModelError(
      `${src} keeps tensors in external data files: deriving a scored decoder from such models is not supported yet`,
    );
  }
  const opset = defaultOpset(model);
  const idx = new GraphIndex(graph);
  for (const o of graph.output ?? []) {
    if ((o.name ?? '').startsWith(IMPORTANCE_PREFIX)) {
      throw new UnsupportedModelError(`${src} already has ${IMPORTANCE_PREFIX}* outputs (is it a derived model?)`);
    }
  }
  const { alias, keyLayers } = presentAliases(graph, idx);
  const nPresent = keyLayers.size;
  const nodes = graph.node ?? [];

  const gqa = nodes.filter((n) => n.opType === 'GroupQueryAttention' && n.domain === MS);
  const mha = nodes.filter((n) => n.opType === 'MultiHeadAttention' && n.domain === MS);
  if (gqa.length && mha.length) {
    throw new UnsupportedModelError(`${src} mixes GroupQueryAttention and MultiHeadAttention nodes`);
  }

  let kind: AttentionKind;
  let sites: Site[];
  if (gqa.length || mha.length) {
    kind = gqa.length ? 'gqa' : 'mha';
    sites = (gqa.length ? gqa : mha).map((node) => ({
      node,
      structural:
        alias.get(node.output?.[1] ?? '') ??
        alias.get(node.output?.[2] ?? '') ??
        nearestPresent([node.output?.[1] ?? '', node.output?.[2] ?? ''], 'forward', idx, alias, 4),
    }));
  } else {
    kind = 'softmax';
    const softmaxes = nodes.filter((n) => n.opType === 'Softmax' && isDefaultDomain(n.domain));
    const rejected: string[] = [];
    sites = [];
    for (const node of softmaxes) {
      const why = softmaxRejectReason(node, idx, opset);
      if (why) {
        rejected.push(`${node.name || node.output?.[0]} (${why})`);
        continue;
      }
      const structural = nearestPresent(
        [...(node.input ?? []), ...valueInputOf(node, idx)],
        'backward',
        idx,
        alias,
        12,
      );
      sites.push({ node, structural });
    }
    // Elimination: more candidates than layers -> keep those tied to a present output.
    if (nPresent && sites.length > nPresent) {
      const tied = sites.filter((s) => s.structural !== undefined);
      if (tied.length === nPresent) sites = tied;
    }
    if (!sites.length) {
      const others = nodes
        .filter((n) => /Attention/.test(n.opType ?? ''))
        .map((n) => `${n.domain || 'ai.onnx'}.${n.opType}`);
      throw new NoAttentionError(
        `no attention found in ${src}: no attention Softmax, com.microsoft.MultiHeadAttention or ` +
          `com.microsoft.GroupQueryAttention node` +
          (rejected.length ? `; Softmax nodes rejected: ${rejected.slice(0, 5).join(', ')}` : '') +
          (others.length ? `; unsupported attention ops: ${[...new Set(others)].join(', ')}` : ''),
      );
    }
  }

  // Layer mapping: structural (present outputs), then names, then topological order.
  const n = nPresent || sites.length;
  if (sites.length !== n) {
    throw new NoAttentionError(
      `no attention found in ${src}: ${sites.length} ${kind} attention site(s) for ${nPresent} present.{i}.key outputs`,
    );
  }
  let layerOf: number[];
  const structural = sites.map((s) => s.structural);
  const named = sites.map((s) => layerFromNames(s.node));
  if (isBijection(structural, n)) layerOf = structural;
  else if (isBijection(named, n)) layerOf = named;
  else {
    const order = sites.map((s, i) => ({ i, o: idx.nodeOrder.get(s.node) ?? 0 })).sort((a, b) => a.o - b.o);
    layerOf = new Array(n);
    order.forEach(({ i }, rank) => (layerOf[i] = rank));
  }

  // Dimensions of the new outputs: [batch, total_len] like attention_mask.
  const mask = (graph.input ?? []).find((i) => i.name === 'attention_mask');
  const maskDims = mask?.type?.tensorType?.shape?.dim;
  const outDims: onnx.TensorShapeProto.IDimension[] =
    maskDims && maskDims.length === 2
      ? maskDims.map((d) =>
          d.dimParam ? { dimParam: d.dimParam } : num(d.dimValue) > 0 ? { dimValue: num(d.dimValue) } : {},
        )
      : [{}, {}];

  const newNodes: onnx.NodeProto[] = [];
  const int64Const = (tag: string, values: number[]): string => {
    const name = idx.unique(`attn_importance/${tag}`);
    newNodes.push(
      onnx.NodeProto.create({
        opType: 'Constant',
        name: idx.unique(`${name}/Constant`),
        output: [name],
        attribute: [
          onnx.AttributeProto.create({
            name: 'value',
            type: onnx.AttributeProto.AttributeType.TENSOR,
            t: onnx.TensorProto.create({ dataType: INT64, dims: [values.length], int64Data: values }),
          }),
        ],
      }),
    );
    return name;
  };
  // The sum over the queries is a product with a row of ones, [1, S] x [B, H, S, T] -> [B, H, 1, T]: a MatMul
  // runs that at full speed, where a ReduceSum over a middle axis walks the attention matrix with strides.
  // Then the mean over the heads (and the size-1 query axis) gives [B, T].
  const queryAxis = int64Const('query_axis', [2]);
  const rowAxes = opset >= 13 ? int64Const('row_axes', [0]) : undefined;
  const axesMean = opset >= 18 ? int64Const('head_axes', [1, 2]) : undefined;
  const intsAttr = (name: string, v: number[]) =>
    onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v });
  const intAttr = (name: string, v: number) =>
    onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v });

  const outputNames: string[] = new Array(n);
  const windowNames: string[] = new Array(n);
  const winStart = int64Const('window_start', [-WINDOW_QUERIES]);
  const winEnd = int64Const('window_end', [2 ** 53 - 1]);
  sites.forEach((site, si) => {
    const layer = layerOf[si];
    const node = site.node;
    const base = `attn_importance/${layer}`;
    let tensor: string;
    let needSoftmax = false;
    if (kind === 'softmax') {
      tensor = node.output![0];
    } else {
      const outs = (node.output ??= []);
      const existing = outs[3];
      if (kind === 'gqa') {
        // qk_output=1 gives scores with masked positions left at 0 (not -inf): a Softmax over them is
        // wrong, so switch to probabilities (2), unless something already reads the scores.
        const mode = attrInt(node, 'qk_output') ?? 0;
        if (existing && mode === 1 && (idx.consumers.has(existing) || (graph.output ?? []).some((o) => o.name === existing))) {
          throw new UnsupportedModelError(
            `${src}: GroupQueryAttention ${node.name || ''} already outputs pre-softmax scores (qk_output=1) that the graph uses`,
          );
        }
        if (mode !== 2) setAttrInt(node, 'qk_output', 2);
      } else {
        needSoftmax = true; // MHA's qk holds scaled, masked scores before softmax
      }
      if (existing) tensor = existing;
      else {
        while (outs.length < 3) outs.push('');
        tensor = idx.unique(`${base}/qk`);
        outs[3] = tensor;
        if (kind === 'mha') {
          // MHA's qk type is not tied to its inputs by the schema, so ORT cannot infer it: declare it
          // as the attention's own type (that of present_key or query), float32 when unknown.
          const elemType = [outs[1], outs[2], node.input?.[0]]
            .map((t) => (t ? idx.elemTypes.get(t) : undefined))
            .find((t) => t !== undefined) ?? FLOAT;
          (graph.valueInfo ??= []).push(
            onnx.ValueInfoProto.create({ name: tensor, type: { tensorType: { elemType } } }),
          );
        }
      }
    }
    const out = `${IMPORTANCE_PREFIX}${layer}`;
    if (idx.names.has(out)) throw new UnsupportedModelError(`${src} already has a tensor named ${out}`);
    idx.names.add(out);
    const mk = (opType: string, input: string[], output: string, attribute: onnx.AttributeProto[] = []) => {
      newNodes.push(onnx.NodeProto.create({ opType, name: idx.unique(`${base}/${opType}`), input, output: [output], attribute }));
      return output;
    };
    // A float32 tensor needs no Cast (it would copy the whole attention matrix).
    let t = idx.elemTypes.get(tensor) === FLOAT ? tensor : mk('Cast', [tensor], idx.unique(`${base}/f32`), [intAttr('to', FLOAT)]);
    if (needSoftmax) t = mk('Softmax', [t], idx.unique(`${base}/probs`), [intAttr('axis', 3)]);
    const shape = mk('Shape', [t], idx.unique(`${base}/shape`));
    const queries = mk('Gather', [shape, queryAxis], idx.unique(`${base}/queries`), [intAttr('axis', 0)]);
    const ones = mk('ConstantOfShape', [queries], idx.unique(`${base}/ones`), [
      onnx.AttributeProto.create({
        name: 'value',
        type: onnx.AttributeProto.AttributeType.TENSOR,
        t: onnx.TensorProto.create({ dataType: FLOAT, dims: [1], floatData: [1] }),
      }),
    ]);
    const row = rowAxes
      ? mk('Unsqueeze', [ones, rowAxes], idx.unique(`${base}/row`))
      : mk('Unsqueeze', [ones], idx.unique(`${base}/row`), [intsAttr('axes', [0])]);
    if (opset >= 10) {
      const win = `${WINDOW_PREFIX}${layer}`;
      if (idx.names.has(win)) throw new UnsupportedModelError(`${src} already has a tensor named ${win}`);
      idx.names.add(win);
      mk('Slice', [t, winStart, winEnd, queryAxis], win);
      windowNames[layer] = win;
    }
    t = mk('MatMul', [row, t], idx.unique(`${base}/query_sum`));
    t = axesMean
      ? mk('ReduceMean', [t, axesMean], out, [intAttr('keepdims', 0)])
      : mk('ReduceMean', [t], out, [intsAttr('axes', [1, 2]), intAttr('keepdims', 0)]);
    outputNames[layer] = out;
  });

  graph.node = [...nodes, ...newNodes];
  graph.output = [
    ...(graph.output ?? []),
    ...outputNames.map((name) =>
      onnx.ValueInfoProto.create({
        name,
        type: { tensorType: { elemType: FLOAT, shape: { dim: outDims.map((d) => ({ ...d })) } } },
      }),
    ),
    ...windowNames.filter(Boolean).map((name) =>
      onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: FLOAT } } }),
    ),
  ];
  return { model, kind, layers: n, outputNames };
}

// ------------------------------------------------------------------------------------------------
// Cached derivation on disk

export interface DeriveOptions {
  /** Where derived models are kept; default $XDG_CACHE_HOME/elastic-vlm/derived or ~/.cache/elastic-vlm/derived. */
  cacheDir?: string;
}

export function defaultDerivedCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'elastic-vlm', 'derived');
}

interface CacheMeta {
  version: number;
  sourceSha256: string;
  source: string;
  bytes?: number;
  kind?: AttentionKind;
  layers?: number;
  outputNames?: string[];
  /** Recorded when the source has no attention, so later loads fail fast without a rewrite. */
  noAttention?: string;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await fsp.writeFile(tmp, data);
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
}

async function readMeta(file: string): Promise<CacheMeta | undefined> {
  try {
    const m = JSON.parse(await fsp.readFile(file, 'utf8')) as CacheMeta;
    return m && m.version === REWRITE_VERSION ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Returns a decoder derived from `srcPath` with `attn_importance.{i}` outputs, from the cache when a
 * derivation of the same source bytes (sha256) and rewrite version exists. The source file and its
 * folder are only read. Rejects with NoAttentionError (message "no attention found in <file>: ...")
 * when the decoder has no usable attention, and UnsupportedModelError for unsupported models.
 */
export async function deriveScoredDecoder(srcPath: string, opts: DeriveOptions = {}): Promise<DerivedDecoder> {
  const dir = opts.cacheDir ?? defaultDerivedCacheDir();
  let sha = await sha256File(srcPath);
  const paths = (h: string) => {
    const base = path.join(dir, `${h}.r${REWRITE_VERSION}`);
    return { model: `${base}.onnx`, meta: `${base}.json` };
  };
  let p = paths(sha);

  const meta = await readMeta(p.meta);
  if (meta && meta.sourceSha256 === sha) {
    if (meta.noAttention) throw new NoAttentionError(meta.noAttention);
    const st = await fsp.stat(p.model).catch(() => undefined);
    if (st && st.size === meta.bytes && meta.kind && meta.layers !== undefined && meta.outputNames) {
      return { path: p.model, kind: meta.kind, layers: meta.layers, outputNames: meta.outputNames, cached: true, sourceSha256: sha };
    }
  }

  const bytes = await fsp.readFile(srcPath);
  // Key by the bytes actually read (the file may have changed since it was hashed).
  sha = createHash('sha256').update(bytes).digest('hex');
  p = paths(sha);
  await fsp.mkdir(dir, { recursive: true });

  let result: RewriteResult;
  try {
    const model = onnx.ModelProto.decode(bytes);
    result = rewriteForImportance(model, { source: srcPath });
  } catch (e) {
    if (e instanceof NoAttentionError) {
      const m: CacheMeta = { version: REWRITE_VERSION, sourceSha256: sha, source: srcPath, noAttention: e.message };
      await writeAtomic(p.meta, JSON.stringify(m, null, 2)).catch(() => {});
    }
    throw e;
  }
  const out = onnx.ModelProto.encode(result.model).finish();
  await writeAtomic(p.model, out);
  const m: CacheMeta = {
    version: REWRITE_VERSION,
    sourceSha256: sha,
    source: srcPath,
    bytes: out.byteLength,
    kind: result.kind,
    layers: result.layers,
    outputNames: result.outputNames,
  };
  await writeAtomic(p.meta, JSON.stringify(m, null, 2));
  return { path: p.model, kind: result.kind, layers: result.layers, outputNames: result.outputNames, cached: false, sourceSha256: sha };
}
