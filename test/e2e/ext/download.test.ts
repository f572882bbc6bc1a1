// "Elastic VLM: Download Model" in the extension host against a hub-shaped server on 127.0.0.1.
import * as vscode from 'vscode';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { api, setSetting, wsFile } from './helpers.js';
import { startFakeHub, smolvlmLikeFiles, type FakeHub } from '../fakeHub.js';
import type { TurnRecord } from '../../../extension/panel.js';

const REPO = 'HuggingFaceTB/SmolVLM-256M-Instruct';

describe('Download Model against a loopback hub', function () {
  let hub: FakeHub;
  let files: Record<string, Buffer>;
  const previousModel = () => vscode.workspace.getConfiguration('elasticVlm').inspect<string>('modelPath')?.globalValue;
  let saved: string | undefined;

  before(async () => {
    files = smolvlmLikeFiles(300 * 1024);
    hub = await startFakeHub({ repo: REPO, files });
    saved = previousModel();
    await setSetting('hubEndpoint', hub.url);
  });

  after(async () => {
    await setSetting('hubEndpoint', undefined);
    await setSetting('modelPath', saved);
    await hub.close();
  });

  it('refuses a checksum mismatch and installs nothing', async () => {
    const bad = Buffer.from(files['onnx/decoder_model_merged_fp16.onnx']);
    bad[7] ^= 1;
    hub.corrupt('onnx/decoder_model_merged_fp16.onnx', bad);
    await assert.rejects(
      Promise.resolve(vscode.commands.executeCommand('elasticVlm.downloadModel', { repo: REPO, dtype: 'fp16', select: true })),
      /sha256 .* does not match/,
    );
    const a = await api();
    assert.ok(!a.settings.current.modelPath.endsWith('fp16'), 'not selected');
    const installed = fs.existsSync(a.modelsDir) ? fs.readdirSync(a.modelsDir) : [];
    assert.ok(!installed.some((n) => n.endsWith('--fp16')), `no fp16 model folder: ${installed}`);
    hub.corrupt('onnx/decoder_model_merged_fp16.onnx', files['onnx/decoder_model_merged_fp16.onnx']);
  });

  it('downloads with an interrupted transfer resumed, verifies, installs into global storage and selects it', async () => {
    hub.cut('onnx/vision_encoder_q4.onnx', 100_000);
    const dir = await vscode.commands.executeCommand<string>('elasticVlm.downloadModel', { repo: REPO, dtype: 'q4', select: true });
    assert.ok(dir && fs.existsSync(path.join(dir, 'onnx', 'vision_encoder_q4.onnx')));
    assert.deepEqual(fs.readFileSync(path.join(dir, 'onnx', 'vision_encoder_q4.onnx')), files['onnx/vision_encoder_q4.onnx']);
    assert.ok(hub.requests.some((r) => r.path === '/cdn/onnx/vision_encoder_q4.onnx' && r.status === 206), 'resumed with Range');
    assert.ok(!fs.existsSync(dir + '.partial'));
    await new Promise((r) => setTimeout(r, 300));
    const a = await api();
    assert.equal(a.settings.current.modelPath, dir);
    const m = await a.host.resolveModel();
    assert.equal(m.dtype, 'q4');
    assert.match(m.label, /SmolVLM-256M-Instruct \(q4\)/);
    // back to the embedded model through Select Model
    await vscode.commands.executeCommand('elasticVlm.selectModel', '');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(a.settings.current.modelPath, '');
  });

  it("an unfamiliar image's warning in the panel offers the downloaded model, and Use switches to it", async () => {
    const a = await api();
    const installed = fs.readdirSync(a.modelsDir).find((n) => n.endsWith('--q4'));
    assert.ok(installed, `the q4 download is installed: ${fs.readdirSync(a.modelsDir)}`);
    const rec = await vscode.commands.executeCommand<TurnRecord>('elasticVlm.askAboutImage', wsFile('ladybird.jpg'), 'What is in this image?');
    assert.equal(rec.error, undefined, rec.error?.message);
    assert.deepEqual(rec.result!.warnings.map((w) => w.code), ['unfamiliar-image']);
    const panel = a.panels.get(wsFile('ladybird.jpg')) as unknown as { offers: { id: number; label: string; dir: string }[]; onMessage(m: unknown): Promise<void>; rejected: string[]; dispose(): void };
    const offer = panel.offers.find((o) => o.dir === path.join(a.modelsDir, installed));
    assert.ok(offer, `offers: ${JSON.stringify(panel.offers)}`);
    assert.equal(offer.label, 'SmolVLM-256M-Instruct (q4)');
    // the webview names an offer by its index, never by a path
    await panel.onMessage({ type: 'useModel', id: 7 });
    assert.equal(a.settings.current.modelPath, '', 'an unknown offer changes nothing');
    await panel.onMessage({ type: 'useModel', id: offer.id });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(a.settings.current.modelPath, offer.dir);
    await vscode.commands.executeCommand('elasticVlm.selectModel', '');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(a.settings.current.modelPath, '');
    panel.dispose();
  });
});
