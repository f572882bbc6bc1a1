// Writes a ModelProto to a file piece by piece. `ModelProto.encode(model).finish()` builds the whole file in one
// buffer: with the decoded source's bytes still alive that is twice the model in memory (a 256M decoder: 1.1 GB).
// Here the graph's initializers are encoded and written one at a time, so the peak is the largest tensor. The
// bytes differ from protobufjs's only in field order (the graph's initializers come last), which protobuf parsers
// accept: a repeated field's elements keep their order, and fields may come in any order.
import { onnx } from 'onnx-proto';
import * as fsp from 'node:fs/promises';

// Field numbers with wire type 2 (length-delimited), onnx.proto: ModelProto.graph = 7, GraphProto.initializer = 5.
const MODEL_GRAPH_TAG = (7 << 3) | 2;
const GRAPH_INITIALIZER_TAG = (5 << 3) | 2;

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n > 127) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Uint8Array.from(out);
}

const field = (tag: number, length: number) => Buffer.concat([varint(tag), varint(length)]);

/** Writes `model` to `file` (created or truncated) and returns the bytes written. */
export async function writeModelFile(model: onnx.IModelProto, file: string): Promise<number> {
  const graph = model.graph;
  const head = onnx.ModelProto.encode({ ...model, graph: null }).finish();
  const fh = await fsp.open(file, 'w');
  let written = 0;
  const put = async (b: Uint8Array) => {
    await fh.write(b);
    written += b.byteLength;
  };
  try {
    await put(head);
    if (graph) {
      const inits = graph.initializer ?? [];
      const rest = onnx.GraphProto.encode({ ...graph, initializer: [] }).finish();
      // Each initializer is measured by encoding it; its bytes are written right away and dropped.
      const sizes = inits.map((t) => onnx.TensorProto.encode(t).len);
      const graphLen = rest.byteLength + sizes.reduce((s, n) => s + varint(GRAPH_INITIALIZER_TAG).byteLength + varint(n).byteLength + n, 0);
      await put(field(MODEL_GRAPH_TAG, graphLen));
      await put(rest);
      for (let i = 0; i < inits.length; i++) {
        await put(field(GRAPH_INITIALIZER_TAG, sizes[i]));
        await put(onnx.TensorProto.encode(inits[i]).finish());
      }
    }
  } finally {
    await fh.close();
  }
  return written;
}
