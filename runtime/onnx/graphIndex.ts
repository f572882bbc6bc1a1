// An index over an ONNX graph (producers, consumers, names, ranks, element types) and small attribute helpers,
// for the graph rewrites in this folder.
import { onnx } from 'onnx-proto';

type Long = { toNumber(): number };
/** A protobuf int64 (number or Long) as a number. */
export const num = (v: number | Long | null | undefined): number =>
  v == null ? 0 : typeof v === 'number' ? v : v.toNumber();

export const isDefaultDomain = (d: string | null | undefined) => !d || d === 'ai.onnx';
export const MS = 'com.microsoft';
export const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** Thrown for graphs a rewrite does not support (external data, mixed attention ops, ...). */
export class UnsupportedModelError extends Error {
  readonly code = 'UNSUPPORTED_MODEL';
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedModelError';
  }
}

export interface Use {
  node: onnx.INodeProto;
  index: number;
}

export class GraphIndex {
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

export function attrInt(node: onnx.INodeProto, name: string): number | undefined {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  if (!a) return undefined;
  if (a.type === onnx.AttributeProto.AttributeType.INT || a.i != null) return num(a.i);
  return undefined;
}

export function setAttrInt(node: onnx.INodeProto, name: string, value: number): void {
  const attrs = (node.attribute ??= []);
  const i = attrs.findIndex((x) => x.name === name);
  const a = onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: value });
  if (i >= 0) attrs[i] = a;
  else attrs.push(a);
}

export function defaultOpset(model: onnx.IModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => isDefaultDomain(o.domain));
  if (!entry) throw new UnsupportedModelError('model imports no default-domain (ai.onnx) opset');
  return num(entry.version);
}

export function hasExternalData(graph: onnx.IGraphProto | null | undefined): boolean {
  if (!graph) return false;
  const ext = (t: onnx.ITensorProto | null | undefined) => !!t && t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
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
