// The inference worker: a long-lived child process (child_process.fork) that keeps the model loaded between
// questions. ONNX Runtime blocks this process's event loop while it runs, never the extension host's.
// Requests run one at a time in arrival order (a second ask waits for the first; the client may cancel it);
// a cancel takes effect between two decode steps. Bad messages get an error event, never a crash.
import { parseRequest, type Request, type WorkerEvent } from '../protocol.js';
import { isBadInput, oneLine, CancelledError } from '../errors.js';
import { Vlm, type Conversation } from '../vlm.js';

const send = (ev: WorkerEvent) => process.send?.(ev);
const log = (line: string) => process.stderr.write(`${line}\n`);

let vlm: Vlm | null = null;
let conversation: Conversation | null = null;
const queue: Request[] = [];
const cancelled = new Set<number>();
let busy = false;

process.on('message', (raw) => {
  const parsed = parseRequest(raw);
  if (!parsed.ok) {
    log(`rejected message: ${parsed.error}`);
    send({ type: 'error', id: parsed.id, message: `bad message: ${parsed.error}`, code: 'bad-input' });
    return;
  }
  const req = parsed.request;
  if (req.type === 'cancel') {
    cancelled.add(req.target);
    const k = queue.findIndex((q) => q.id === req.target);
    if (k !== -1) {
      queue.splice(k, 1);
      send({ type: 'error', id: req.target, message: 'cancelled', code: 'cancelled' });
    }
    return;
  }
  queue.push(req);
  void pump();
});

process.on('disconnect', () => process.exit(0));

async function pump(): Promise<void> {
  if (busy) return;
  busy = true;
  try {
    for (let req = queue.shift(); req; req = queue.shift()) await handle(req);
  } finally {
    busy = false;
  }
}

// Lets queued IPC messages (a cancel) in between decode steps.
const yieldToIo = () => new Promise<void>((r) => setImmediate(r));

async function handle(req: Request): Promise<void> {
  try {
    switch (req.type) {
      case 'load': {
        send({ type: 'progress', id: req.id, stage: 'loading', detail: req.options.modelDir });
        conversation?.dispose();
        conversation = null;
        await vlm?.release();
        vlm = null;
        vlm = await Vlm.load({ ...req.options, log });
        send({
          type: 'ready',
          id: req.id,
          info: {
            modelDir: req.options.modelDir,
            executionProvider: vlm.provider,
            fallbackReason: vlm.fallbackReason,
            layers: vlm.config.numLayers,
            scores: vlm.scoreOutputs !== null,
            loadMs: vlm.loadMs,
          },
        });
        return;
      }
      case 'ask':
      case 'followUp': {
        if (!vlm) throw Object.assign(new Error('no model loaded'), { kind: 'bad-input' });
        const callbacks = {
          onToken: (text: string, index: number) => send({ type: 'token', id: req.id, text, index }),
          onStats: (stats: import('../cache/types.js').CacheStats, kept?: import('../protocol.js').KeptPositions) =>
            send({ type: 'cacheStats', id: req.id, stats, ...(kept ? { kept } : {}) }),
          trackKept: true,
          onImportance: (map: import('../protocol.js').ImportanceMap) => send({ type: 'importance', id: req.id, map }),
          isCancelled: () => cancelled.has(req.id),
          yieldEachStep: yieldToIo,
        };
        let result;
        if (req.type === 'ask') {
          send({ type: 'progress', id: req.id, stage: 'encoding' });
          conversation?.dispose();
          conversation = vlm.conversation();
          result = await conversation.ask(req.image, req.question, { cache: req.cache, generate: req.generate }, callbacks);
        } else {
          if (!conversation) throw Object.assign(new Error('no conversation to follow up: ask about an image first'), { kind: 'bad-input' });
          send({ type: 'progress', id: req.id, stage: 'prefill' });
          result = await conversation.followUp(req.question, { generate: req.generate }, callbacks);
        }
        const { ids: _ids, forcedLogProbs: _f, ...plain } = result;
        send({ type: 'done', id: req.id, result: plain });
        return;
      }
      case 'dispose':
        conversation?.dispose();
        await vlm?.release();
        send({ type: 'disposed', id: req.id });
        setImmediate(() => process.exit(0));
        return;
    }
  } catch (e) {
    const code = e instanceof CancelledError ? 'cancelled' : isBadInput(e) ? 'bad-input' : 'internal';
    if (code === 'internal') log(`internal error: ${(e as Error).stack ?? e}`);
    send({ type: 'error', id: req.id, message: oneLine(e), code });
  } finally {
    cancelled.delete(req.id);
  }
}
