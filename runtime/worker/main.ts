// The inference worker: a long-lived child process (child_process.fork) that keeps the model loaded between
// questions. ONNX Runtime blocks this process's event loop while it runs, never the extension host's.
// Requests run one at a time in arrival order (a second ask waits for the first; the client may cancel it);
// a cancel takes effect between two decode steps. Bad messages get an error event, never a crash.
import { parseRequest, type AskResult, type CacheOptions, type Request, type WorkerEvent } from '../protocol.js';
import { isBadInput, oneLine, BadInputError, describeFailure } from '../errors.js';
import { Vlm, type AskCallbacks, type Conversation } from '../vlm.js';

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
      // A queued request ends as one in flight does: done, cancelled, with what it made (nothing yet).
      const [q] = queue.splice(k, 1);
      if (q.type === 'ask' || q.type === 'followUp') send({ type: 'done', id: q.id, result: cancelledBeforeStart(q) });
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

/** The result of an ask or follow-up cancelled before it started: no tokens, the cache as it stands. */
function cancelledBeforeStart(req: Extract<Request, { type: 'ask' | 'followUp' }>): AskResult {
  const cache: CacheOptions = req.type === 'ask' ? req.cache : { policy: 'full', keep: 1 };
  return {
    answer: '',
    promptTokens: 0,
    imageTokens: 0,
    generatedTokens: 0,
    executionProvider: vlm?.provider ?? 'none',
    stopReason: 'cancelled',
    timings: { loadMs: vlm?.loadMs ?? 0, visionMs: 0, prefillMs: 0, firstTokenMs: 0, decodeTokensPerSecond: 0 },
    cache: req.type === 'followUp' && conversation ? conversation.stats() : {
      policy: cache.policy, keep: cache.keep, tokensSeen: 0, budget: 0, perLayerLength: [], bytes: 0, fullBytes: 0,
      merged: 0, evicted: 0, location: vlm?.provider === 'webgpu' ? 'gpu' : 'cpu',
    },
    warnings: [],
  };
}

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
            ...(vlm.probe ? { probe: vlm.probe } : {}),
            layers: vlm.config.numLayers,
            scores: vlm.scoreOutputs !== null,
            loadMs: vlm.loadMs,
            familiarity: vlm.familiarity !== null,
          },
        });
        return;
      }
      case 'ask':
      case 'followUp': {
        if (!vlm) throw new BadInputError('no model loaded');
        const callbacks: AskCallbacks = {
          onToken: (text, index) => send({ type: 'token', id: req.id, text, index }),
          onStats: (stats, kept) => send({ type: 'cacheStats', id: req.id, stats, ...(kept ? { kept } : {}) }),
          trackKept: true,
          onImportance: (map) => send({ type: 'importance', id: req.id, map }),
          isCancelled: () => cancelled.has(req.id),
          yieldEachStep: yieldToIo,
        };
        let result;
        if (req.type === 'ask') {
          send({ type: 'progress', id: req.id, stage: 'encoding' });
          conversation?.dispose();
          conversation = vlm.conversation();
          result = await conversation.ask(req.image, req.question, { cache: req.cache, generate: req.generate, detail: req.detail }, callbacks);
        } else {
          if (!conversation) throw new BadInputError('no conversation to follow up: ask about an image first');
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
    const code = isBadInput(e) ? 'bad-input' : 'internal';
    if (code === 'internal') log(`internal error: ${(e as Error).stack ?? e}`);
    send({ type: 'error', id: req.id, message: code === 'bad-input' ? oneLine(e) : describeFailure(e), code });
  } finally {
    cancelled.delete(req.id);
  }
}
