// Writes a copy of a model folder whose ONNX weights are STORED as float16 (each float32 initializer becomes a
// float16 one plus a Cast back to float32), halving the bytes while computing in float32 as before. Used to fit
// the default model and the Node/ONNX Runtime carry into one device-machine transfer (64 MiB).
//   node --import tsx scripts/device/weights-fp16.ts SRC_MODEL_DIR DST_DIR
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { f32ToF16 } from '../../runtime/util/half.js';

const [src, dst] = process.argv.slice(2);
mkdirSync(join(dst, 'onnx'), { recursive: true });
for (const f of readdirSync(src)) if (f.endsWith('.json')) cpSync(join(src, f), join(dst, f));
for (const f of readdirSync(join(src, 'onnx')).filter((x) => /^(vision_encoder|embed_tokens|decoder_model_merged)\.onnx$/.test(x))) {
  const model = onnx.ModelProto.decode(readFileSync(join(src, 'onnx', f)));
  const g = model.graph!;
  const casts: onnx.INodeProto[] = [];
  for (const init of g.initializer ?? []) {
    if (init.dataType !== onnx.TensorProto.DataType.FLOAT) continue;
    const raw = init.rawData && init.rawData.length ? init.rawData : null;
    const data = raw ? new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) : Float32Array.from(init.floatData ?? []);
    if (data.length < 1024) continue; // small constants stay as they are
    const half = Uint16Array.from(data, f32ToF16);
    const name = init.name!;
    init.name = `${name}__fp16`;
    init.dataType = onnx.TensorProto.DataType.FLOAT16;
    init.floatData = [];
    init.rawData = new Uint8Array(half.buffer);
    casts.push({ opType: 'Cast', input: [init.name], output: [name], name: `cast_${name}`, attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: onnx.TensorProto.DataType.FLOAT }] });
  }
  g.node = [...casts, ...(g.node ?? [])];
  writeFileSync(join(dst, 'onnx', f), onnx.ModelProto.encode(model).finish());
  console.log(`${f}: ${casts.length} weights stored as float16`);
}
