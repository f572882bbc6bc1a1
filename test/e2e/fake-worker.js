// A stand-in inference worker for the UI and extension-host tests while no real model is available: it speaks the
// worker protocol of runtime/protocol.ts (load, ask, followUp, cancel, dispose) and streams a made-up answer with
// cache statistics and an importance map, at FAKE_TOKEN_MS per token. Images are checked by their magic bytes, so a
// corrupt image gets a bad-input error as from the real worker. Selected with ELASTIC_VLM_WORKER=<this file>.
'use strict';
const fs = require('fs');
const TOKEN_MS = Number(process.env.FAKE_TOKEN_MS || 40);
const LAYERS = 8;
const BYTES_PER_TOKEN = 46080 / 30 * LAYERS;
const send = (m) => process.send && process.send(m);
let loaded = null;
let conv = null; // { image, tokensSeen, kept }
const cancelled = new Set();
const queue = [];
let busy = false;

function sniff(buf) {
  if (buf.length < 12) return null;
  if (buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    // IHDR must follow and the IEND chunk must end the file.
    if (buf.toString('latin1', 12, 16) !== 'IHDR' || buf.toString('latin1', buf.length - 8, buf.length - 4) !== 'IEND') return null;
    return { w: buf.readUInt32BE(16), h: buf.readUInt32BE(20) };
  }
  if (buf[0] === 0xff && buf[1] === 0xd8 && buf[buf.length - 2] === 0xff && buf[buf.length - 1] === 0xd9) return { w: 640, h: 480 };
  if (buf.toString('latin1', 0, 4) === 'GIF8' || buf.toString('latin1', 0, 2) === 'BM') return { w: 256, h: 256 };
  if (buf.toString('latin1', 0, 4) === 'RIFF' && buf.toString('latin1', 8, 12) === 'WEBP') return { w: 256, h: 256 };
  if (/^\s*(<\?xml[^>]*>\s*)?<svg[\s>]/.test(buf.toString('utf8', 0, 200))) return { w: 256, h: 256 };
  return null;
}

function stats(cache, tokensSeen, kept, merged, evicted) {
  const full = cache.policy === 'full';
  const budget = Math.round(cache.keep * tokensSeen);
  const perLayer = Array.from({ length: LAYERS }, (_, i) => (full ? tokensSeen : Math.max(1, Math.min(tokensSeen, kept - (i % 3)))));
  const bytes = Math.round(perLayer.reduce((a, b) => a + b, 0) * BYTES_PER_TOKEN / LAYERS);
  return { policy: cache.policy, keepRatio: cache.keep, tokensSeen, budget: full ? tokensSeen : budget, perLayerLength: perLayer,
    bytes, fullBytes: Math.round(tokensSeen * BYTES_PER_TOKEN), merged, evicted, location: 'cpu' };
}

function importance(rows, cols, g) {
  const tiles = [];
  const val = (r, c, i, j) => Math.exp(-(((c * g + j) / (cols * g) - 0.6) ** 2 + ((r * g + i) / (rows * g) - 0.4) ** 2) * 8);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
    const values = [];
    for (let i = 0; i < g; i++) for (let j = 0; j < g; j++) values.push(val(r, c, i, j));
    tiles.push({ row: r, col: c, global: false, gridSide: g, values });
  }
  const gv = [];
  for (let i = 0; i < g; i++) for (let j = 0; j < g; j++) gv.push(Math.exp(-((j / g - 0.6) ** 2 + (i / g - 0.4) ** 2) * 8));
  tiles.push({ row: 0, col: 0, global: true, gridSide: g, values: gv });
  return { tiles, rows, cols };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function generate(req, followUp) {
  const t0 = Date.now();
  const cache = req.cache || (conv && conv.cache) || { policy: 'elastic', keep: 0.5 };
  let imageTokens = 0;
  let promptTokens = 0;
  if (!followUp) {
    let buf;
    try { buf = fs.readFileSync(req.image); } catch (e) { throw Object.assign(new Error(`cannot read the image ${req.image}: ${e.code || e.message}`), { code: 'bad-input' }); }
    const dim = sniff(buf);
    if (!dim) throw Object.assign(new Error(`cannot decode the image ${require('path').basename(req.image)}: not a valid PNG, JPEG, GIF, WebP, BMP or SVG file`), { code: 'bad-input' });
    send({ type: 'progress', id: req.id, stage: 'vision', detail: `${dim.w}x${dim.h}` });
    await sleep(100);
    const rows = dim.w > 512 || dim.h > 512 ? 2 : 1;
    const cols = dim.w > 512 ? 2 : 1;
    imageTokens = (rows * cols + (rows * cols > 1 ? 1 : 0)) * 64;
    send({ type: 'importance', id: req.id, map: importance(rows * cols > 1 ? rows : 0, rows * cols > 1 ? cols : 0, 8) });
    conv = { image: req.image, tokensSeen: 0, kept: 0, merged: 0, evicted: 0, cache };
  } else if (!conv) {
    throw Object.assign(new Error('no conversation to follow up: ask about an image first'), { code: 'bad-input' });
  }
  conv.cache = cache;
  promptTokens = imageTokens + 12 + req.question.length / 4 | 0;
  conv.tokensSeen += promptTokens;
  conv.kept = cache.policy === 'full' ? conv.tokensSeen : Math.round(conv.tokensSeen * cache.keep);
  conv.merged += cache.policy === 'elastic' ? conv.tokensSeen - conv.kept : 0;
  conv.evicted += cache.policy === 'elastic' ? 0 : conv.tokensSeen - conv.kept;
  send({ type: 'cacheStats', id: req.id, stats: stats(cache, conv.tokensSeen, conv.kept, conv.merged, conv.evicted) });
  const q = req.question.toLowerCase();
  let words;
  if (q.includes('html')) words = 'Here is some markup: <img src=x onerror="document.title=1"> <b>not bold</b> & done.'.split(/(?= )/);
  else if (q.includes('long')) words = Array.from({ length: 400 }, (_, i) => ` word${i}`);
  else words = `This ${followUp ? 'follow-up answer' : 'image'} shows a small test pattern with colored shapes (policy ${cache.policy}, keep ${cache.keep}).`.split(/(?= )/);
  const max = req.generate.maxNewTokens;
  let answer = '';
  let n = 0;
  let stopReason = 'eos';
  for (const w of words) {
    if (cancelled.has(req.id)) { stopReason = 'cancelled'; break; }
    if (n >= max) { stopReason = 'length'; break; }
    await sleep(TOKEN_MS);
    if (cancelled.has(req.id)) { stopReason = 'cancelled'; break; }
    answer += w;
    send({ type: 'token', id: req.id, text: w, index: n++ });
    conv.tokensSeen++;
    const target = cache.policy === 'full' ? conv.tokensSeen : Math.round(conv.tokensSeen * cache.keep);
    if (conv.kept + 1 > target && cache.policy !== 'full') { if (cache.policy === 'elastic') conv.merged++; else conv.evicted++; } else conv.kept++;
    if (n % (req.generate.statsEvery || 4) === 0) send({ type: 'cacheStats', id: req.id, stats: stats(cache, conv.tokensSeen, conv.kept, conv.merged, conv.evicted) });
  }
  const final = stats(cache, conv.tokensSeen, conv.kept, conv.merged, conv.evicted);
  const ms = Date.now() - t0;
  return { answer, promptTokens, imageTokens, generatedTokens: n, executionProvider: 'fake-cpu', stopReason, cache: final,
    timings: { loadMs: 0, visionMs: 100, prefillMs: 20, firstTokenMs: 120 + TOKEN_MS, decodeTokensPerSecond: n / Math.max(0.001, ms / 1000) } };
}

async function handle(req) {
  try {
    switch (req.type) {
      case 'load': {
        if (!fs.existsSync(req.options.modelDir)) throw Object.assign(new Error(`model folder ${req.options.modelDir} does not exist`), { code: 'bad-input' });
        await sleep(150);
        loaded = req.options;
        conv = null;
        send({ type: 'ready', id: req.id, info: { modelDir: req.options.modelDir, executionProvider: 'fake-cpu', layers: LAYERS, scores: true, loadMs: 150 } });
        return;
      }
      case 'ask':
      case 'followUp': {
        if (!loaded) throw Object.assign(new Error('no model loaded'), { code: 'internal' });
        const result = await generate(req, req.type === 'followUp');
        send({ type: 'done', id: req.id, result });
        return;
      }
      case 'dispose':
        send({ type: 'disposed', id: req.id });
        setTimeout(() => process.exit(0), 10);
        return;
    }
  } catch (e) {
    send({ type: 'error', id: req.id, message: e.message, code: e.code || 'internal' });
  }
}

async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length) await handle(queue.shift());
  busy = false;
}

process.on('message', (m) => {
  if (!m || typeof m !== 'object') return;
  if (m.type === 'cancel') { cancelled.add(m.target); return; }
  queue.push(m);
  void pump();
});
process.on('disconnect', () => process.exit(0));
