// The peer: transformers.js (@huggingface/transformers, which drives onnxruntime-node too) generating greedily
// with its full cache from the same model folder, on the CPU, network cut. Run in a child process; prints
// one JSON line: decode tokens per second (median inter-token time) and the answer.
import { runAsChild } from './child.js';
import { basename, dirname } from 'node:path';

export interface PeerSpec {
  modelDir: string;
  image: string;
  /** transformers.js's dtype name for the same files (fp32, fp16, q4, ...). */
  dtype: string;
  question: string;
  maxNewTokens: number;
  ignoreEos: boolean;
  /** Earlier turns (question, answer) put before the question: a long context in one prompt. */
  history?: { question: string; answer: string }[];
}

export interface PeerResult {
  name: 'transformers.js';
  decodeTokensPerSecond: number;
  generatedTokens: number;
  answer: string;
  loadMs: number;
}

async function runPeer(spec: PeerSpec): Promise<PeerResult> {
  process.env.ORT_DISABLE_TELEMETRY = '1';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tjs = require('@huggingface/transformers');
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = `${dirname(spec.modelDir)}/`;
  const id = basename(spec.modelDir);
  const t0 = performance.now();
  const processor = await tjs.AutoProcessor.from_pretrained(id);
  // The thread count ours takes from ELASTIC_VLM_THREADS (runtime/model/sessions.ts), so both run on the same cores.
  const threads = Number(process.env.ELASTIC_VLM_THREADS) || undefined;
  const model = await tjs.AutoModelForVision2Seq.from_pretrained(id, {
    dtype: spec.dtype, device: 'cpu', ...(threads ? { session_options: { intraOpNumThreads: threads } } : {}),
  });
  const loadMs = performance.now() - t0;
  const turns = spec.history ?? [];
  const messages: object[] = [];
  turns.forEach((t, i) => {
    messages.push({ role: 'user', content: [...(i === 0 ? [{ type: 'image' }] : []), { type: 'text', text: t.question }] });
    messages.push({ role: 'assistant', content: [{ type: 'text', text: t.answer }] });
  });
  messages.push({ role: 'user', content: [...(turns.length === 0 ? [{ type: 'image' }] : []), { type: 'text', text: spec.question }] });
  const text = processor.apply_chat_template(messages, { add_generation_prompt: true });
  const image = await tjs.RawImage.read(spec.image);
  const inputs = await processor(text, [image]);
  const stamps: number[] = [];
  class Clock extends tjs.BaseStreamer {
    put() {
      stamps.push(performance.now());
    }
    end() {}
  }
  const gen = {
    ...inputs,
    max_new_tokens: spec.maxNewTokens,
    do_sample: false,
    streamer: new Clock(),
    ...(spec.ignoreEos ? { min_new_tokens: spec.maxNewTokens } : {}),
  };
  const out = await model.generate(gen);
  const promptLen = inputs.input_ids.dims[1];
  const seq = out.slice(null, [promptLen, null]);
  const answer = processor.batch_decode(seq, { skip_special_tokens: true })[0].trim();
  // The first put() is the prompt; intervals between later ones are decode steps.
  const gaps = stamps.slice(2).map((t, i) => t - stamps[i + 1]).sort((a, b) => a - b);
  const med = gaps.length ? gaps[gaps.length >> 1] : NaN;
  return { name: 'transformers.js', decodeTokensPerSecond: 1000 / med, generatedTokens: seq.dims[1], answer, loadMs };
}

if (require.main === module) runAsChild(runPeer);
