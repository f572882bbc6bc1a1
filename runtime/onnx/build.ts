// A small builder for ONNX graphs with onnx-proto (protobufjs-generated ONNX types). The runtime builds its
// device-side helper graphs with it (KV-cache compaction on WebGPU, runtime/cache/gpuStore.ts); the tests
// reuse it through test/helpers/onnx-build.ts. No `vscode` import: it runs in the worker, the CLI and tests.
// Usage:
//   const g = new GraphBuilder('g');
//   g.input('x', F32, ['batch', 4]); g.init('w', F32, [4, 2], new Float32Array(8));
//   const y = g.node('MatMul', ['x', 'w']);
//   g.output(y, F32, ['batch', 2]);
//   const bytes = encodeModel(g.model({ opset: 17 }));
import { onnx } from 'onnx-proto';

export const F32 = onnx.TensorProto.DataType.FLOAT;
export const F16 = onnx.TensorProto.DataType.FLOAT16;
export const I32 = onnx.TensorProto.DataType.INT32;
export const I64 = onnx.TensorProto.DataType.INT64;
export const BOOL = onnx.TensorProto.DataType.BOOL;

/** A dimension: a fixed size, a symbolic name, or null for an unnamed unknown dimension. */
export type Dim = number | string | null;
export type AttrValue = number | string | number[] | onnx.ITensorProto | { floats: number[] } | { float: number };

/** A tensor proto (raw_data little-endian) from a typed array or a plain number list. */
export function tensor(
  name: string,
  dataType: number,
  dims: number[],
  data: ArrayLike<number> | ArrayLike<bigint>,
): onnx.TensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`tensor ${name}: ${data.length} values for dims [${dims}]`);
  let raw: Uint8Array;
  switch (dataType) {
    case F32: raw = u8(Float32Array.from(data as ArrayLike<number>)); break;
    case I32: raw = u8(Int32Array.from(data as ArrayLike<number>)); break;
    case I64: raw = u8(BigInt64Array.from(Array.from(data as ArrayLike<number | bigint>, (v) => BigInt(v)))); break;
    case BOOL: raw = Uint8Array.from(data as ArrayLike<number>, (v) => (v ? 1 : 0)); break;
    case F16: raw = u8(Uint16Array.from(data as ArrayLike<number>)); break; // caller passes float16 bit patterns
    default: throw new Error(`tensor ${name}: unsupported data type ${dataType}`);
  }
  return onnx.TensorProto.create({ name, dataType, dims, rawData: raw });
}

function u8(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

/** A ValueInfoProto for a tensor; dims omitted = unknown rank. */
export function valueInfo(name: string, elemType: number, dims?: Dim[]): onnx.ValueInfoProto {
  const t: onnx.TypeProto.ITensor = { elemType };
  if (dims) {
    t.shape = {
      dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  return onnx.ValueInfoProto.create({ name, type: { tensorType: t } });
}

/** An AttributeProto from a JS value (int, float via {float}, string, ints, floats via {floats}, tensor). */
export function attr(name: string, v: AttrValue): onnx.AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attr ${name}: use { float: x } for floats`);
    return onnx.AttributeProto.create({ name, type: T.INT, i: v });
  }
  if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: T.INTS, ints: v });
  if ('floats' in v) return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: (v as { floats: number[] }).floats });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: (v as { float: number }).float });
  return onnx.AttributeProto.create({ name, type: T.TENSOR, t: v as onnx.ITensorProto });
}

export interface NodeOptions {
  name?: string;
  domain?: string;
  /** Output names; default one fresh name. A number n gives n fresh names. */
  outputs?: string[] | number;
  attrs?: Record<string, AttrValue>;
}

/** Accumulates nodes, inputs, outputs and initializers of one graph. */
export class GraphBuilder {
  readonly nodes: onnx.NodeProto[] = [];
  readonly inputs: onnx.ValueInfoProto[] = [];
  readonly outputs: onnx.ValueInfoProto[] = [];
  readonly initializers: onnx.TensorProto[] = [];
  readonly valueInfos: onnx.ValueInfoProto[] = [];
  private counter = 0;

  constructor(readonly name = 'graph') {}

  fresh(prefix = 't'): string {
    return `${prefix}_${this.counter++}`;
  }

  input(name: string, elemType: number, dims?: Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims?: Dim[]): string {
    this.outputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Records a value_info (shape annotation) for an intermediate tensor. */
  info(name: string, elemType: number, dims?: Dim[]): void {
    this.valueInfos.push(valueInfo(name, elemType, dims));
  }

  /** Adds an initializer; returns its name. */
  init(name: string, dataType: number, dims: number[], data: ArrayLike<number> | ArrayLike<bigint>): string {
    this.initializers.push(tensor(name, dataType, dims, data));
    return name;
  }

  /** Adds an initializer with a fresh name. */
  const(dataType: number, dims: number[], data: ArrayLike<number> | ArrayLike<bigint>, prefix = 'c'): string {
    return this.init(this.fresh(prefix), dataType, dims, data);
  }

  /** Adds a node; returns its outputs (the first one as a string for convenience through `node1`). */
  nodeN(opType: string, inputs: string[], opts: NodeOptions = {}): string[] {
    const outs =
      typeof opts.outputs === 'number'
        ? Array.from({ length: opts.outputs }, () => this.fresh(opType))
        : opts.outputs ?? [this.fresh(opType)];
    const attribute = Object.entries(opts.attrs ?? {}).map(([k, v]) => attr(k, v));
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outs,
        name: opts.name ?? this.fresh(`node_${opType}`),
        domain: opts.domain ?? '',
        attribute,
      }),
    );
    return outs;
  }

  node(opType: string, inputs: string[], opts: NodeOptions = {}): string {
    return this.nodeN(opType, inputs, opts)[0];
  }

  graph(): onnx.GraphProto {
    return onnx.GraphProto.create({
      name: this.name,
      node: this.nodes,
      input: this.inputs,
      output: this.outputs,
      initializer: this.initializers,
      valueInfo: this.valueInfos,
    });
  }

  /** A ModelProto around this graph. `opset` is the default-domain version; com.microsoft v1 is added on request. */
  model(opts: { opset?: number; irVersion?: number; msDomain?: boolean; producer?: string } = {}): onnx.ModelProto {
    const opsetImport: onnx.IOperatorSetIdProto[] = [{ domain: '', version: opts.opset ?? 17 }];
    if (opts.msDomain) opsetImport.push({ domain: 'com.microsoft', version: 1 });
    return onnx.ModelProto.create({
      irVersion: opts.irVersion ?? 8,
      producerName: opts.producer ?? 'elastic-vlm',
      opsetImport,
      graph: this.graph(),
    });
  }
}

export function encodeModel(model: onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
