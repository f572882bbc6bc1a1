// A hub-shaped HTTP server on 127.0.0.1 for the model download tests (unit tests and extension-host tests):
//   GET /api/models/{repo}/tree/main[/onnx]   file lists with git sha1 `oid`, and `lfs: {oid: sha256, size}` for .onnx
//   GET /{repo}/resolve/main/{path}           302 to /cdn/{path} (the real hub redirects to its CDN), which serves
//                                             the bytes with HTTP Range support.
// Faults for tests: cut a file's first transfer after N bytes, serve corrupt bytes, ignore Range.
import * as http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface FakeHubOptions {
  repo: string;
  files: Record<string, Buffer>;
}

export interface FakeHub {
  url: string;
  requests: { path: string; range?: string; status: number }[];
  /** Close the connection of the next transfer of `path` after `bytes` bytes (count = how many times). */
  cut(path: string, bytes: number, count?: number): void;
  /** Serve these bytes instead of the listed ones (a checksum mismatch). */
  corrupt(path: string, bytes: Buffer): void;
  ignoreRange: boolean;
  close(): Promise<void>;
}

export function smolvlmLikeFiles(size = 64 * 1024): Record<string, Buffer> {
  const files: Record<string, Buffer> = {
    'config.json': Buffer.from(JSON.stringify({ model_type: 'idefics3', text_config: { num_hidden_layers: 2 } })),
    'tokenizer.json': Buffer.from(JSON.stringify({ version: '1.0', added_tokens: [{ id: 1, content: '<image>' }] })),
    'tokenizer_config.json': Buffer.from('{}'),
    'preprocessor_config.json': Buffer.from(JSON.stringify({ do_image_splitting: true })),
    'generation_config.json': Buffer.from('{}'),
    'README.md': Buffer.from('# not downloaded'),
  };
  for (const g of ['vision_encoder', 'embed_tokens', 'decoder_model_merged']) {
    for (const dtype of ['', '_q4', '_fp16']) files[`onnx/${g}${dtype}.onnx`] = randomBytes(size + g.length + dtype.length);
  }
  return files;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

export async function startFakeHub(opts: FakeHubOptions): Promise<FakeHub> {
  const cuts = new Map<string, { bytes: number; count: number }>();
  const corrupt = new Map<string, Buffer>();
  const requests: FakeHub['requests'] = [];
  const entry = (p: string) => {
    const b = opts.files[p];
    const isLfs = p.endsWith('.onnx');
    return isLfs
      ? { type: 'file', path: p, size: b.length, oid: gitSha1(Buffer.from(`pointer ${p}`)), lfs: { oid: sha256(b), size: b.length, pointerSize: 134 } }
      : { type: 'file', path: p, size: b.length, oid: gitSha1(b) };
  };
  const hub: FakeHub = {
    url: '',
    requests,
    ignoreRange: false,
    cut: (p, bytes, count = 1) => cuts.set(p, { bytes, count }),
    corrupt: (p, bytes) => corrupt.set(p, bytes),
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const p = decodeURIComponent(url.pathname);
    const log = (status: number) => requests.push({ path: p, range: req.headers.range, status });
    const treePrefix = `/api/models/${opts.repo}/tree/main`;
    if (p === treePrefix || p === `${treePrefix}/onnx`) {
      const inOnnx = p.endsWith('/onnx');
      const names = Object.keys(opts.files).filter((f) => (inOnnx ? f.startsWith('onnx/') : !f.includes('/')));
      const list: unknown[] = names.map(entry);
      if (!inOnnx) list.push({ type: 'directory', path: 'onnx', size: 0, oid: gitSha1(Buffer.from('tree')) });
      log(200);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(list));
      return;
    }
    const resolvePrefix = `/${opts.repo}/resolve/main/`;
    if (p.startsWith(resolvePrefix)) {
      const file = p.slice(resolvePrefix.length);
      if (!opts.files[file]) { log(404); res.writeHead(404).end('not found'); return; }
      log(302);
      res.writeHead(302, { location: `/cdn/${file}` }).end();
      return;
    }
    if (p.startsWith('/cdn/')) {
      const file = p.slice('/cdn/'.length);
      const body = corrupt.get(file) ?? opts.files[file];
      if (!body) { log(404); res.writeHead(404).end(); return; }
      let start = 0;
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (m && !hub.ignoreRange) start = Number(m[1]);
      if (start > body.length) { log(416); res.writeHead(416).end(); return; }
      const status = start > 0 ? 206 : 200;
      log(status);
      const headers: Record<string, string | number> = { 'content-length': body.length - start, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
      if (status === 206) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
      res.writeHead(status, headers);
      const cut = cuts.get(file);
      if (cut && cut.count > 0) {
        cut.count--;
        res.write(body.subarray(start, Math.min(body.length, start + cut.bytes)), () => setTimeout(() => req.socket.destroy(), 20));
        return;
      }
      res.end(body.subarray(start));
      return;
    }
    log(404);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return hub;
}
