// The extension in the real extension host, as installed from the .vsix.
import * as vscode from 'vscode';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { api, EXT_ID, setSetting, waitFor, wsFile } from './helpers.js';
import type { TurnRecord } from '../../../extension/panel.js';

const IMAGE = 'shapes.png';
const OTHER = 'small.png';
/**
 * The question the embedded model answers at length: with the full cache it describes the image in ~70-90 tokens
 * before its end token (short questions get a word or two). Stop and token-limit tests use it.
 */
const LONG_QUESTION = 'Describe this image.';

/** Settings for a long answer: the full cache (compression shortens this small model's descriptions) and room. */
async function longAnswerSettings(): Promise<void> {
  await setSetting('cachePolicy', 'full');
  await setSetting('maxNewTokens', 1024);
}

describe('Elastic VLM in the extension host', function () {
  before(async () => {
    await api();
  });

  afterEach(async () => {
    for (const k of ['cacheKeep', 'cachePolicy', 'maxNewTokens', 'device']) {
      await vscode.workspace.getConfiguration('elasticVlm').update(k, undefined, vscode.ConfigurationTarget.Global);
    }
  });

  it('is the installed copy and contributes its commands, menus and settings', async () => {
    const ext = vscode.extensions.getExtension(EXT_ID)!;
    const expected = process.env.ELASTIC_VLM_E2E_INSTALLED;
    if (expected) assert.equal(path.resolve(ext.extensionPath), path.resolve(expected), 'running the installed .vsix copy');
    const cmds = await vscode.commands.getCommands(true);
    for (const c of ['elasticVlm.askAboutImage', 'elasticVlm.downloadModel', 'elasticVlm.selectModel', 'elasticVlm.stop']) assert.ok(cmds.includes(c), c);
    const pj = ext.packageJSON;
    const ask = pj.contributes.commands.find((c: { command: string }) => c.command === 'elasticVlm.askAboutImage');
    assert.equal(ask.title, 'Ask About Image');
    assert.equal(ask.category, 'Elastic VLM');
    const when: string = pj.contributes.menus['explorer/context'][0].when;
    const m = /resourceExtname =~ \/(.+)\/i/.exec(when);
    assert.ok(m, when);
    const re = new RegExp(m[1], 'i');
    for (const ok of ['.png', '.jpg', '.JPEG', '.webp', '.gif', '.bmp', '.svg']) assert.ok(re.test(ok), ok);
    for (const no of ['.txt', '.pngx', '.tiff', '.md', '']) assert.ok(!re.test(no), no);
    assert.equal(pj.contributes.menus['editor/title'][0].when, 'activeCustomEditorId == imagePreview.previewEditor');
    const props = pj.contributes.configuration.properties;
    assert.equal(props['elasticVlm.cacheKeep'].minimum, 0.05);
    assert.deepEqual(props['elasticVlm.cachePolicy'].enum, ['elastic', 'h2o', 'streaming', 'snapkv', 'full']);
    assert.deepEqual(props['elasticVlm.elasticVariant'].enum, ['answers', 'paper', 'released']);
    assert.deepEqual(props['elasticVlm.imageDetail'].enum, ['global', 'low', 'medium', 'full']);
    assert.equal(props['elasticVlm.maxNewTokens'].maximum, 4096);
    assert.ok(props['elasticVlm.hubEndpoint']);
  });

  it('rejects invalid settings with a message and keeps the previous valid value', async () => {
    const a = await api();
    // 0.55, not the default (0.3): the previous valid value kept must be the one set
    await setSetting('cacheKeep', 0.55);
    assert.equal(a.settings.current.cacheKeep, 0.55);
    await setSetting('cacheKeep', 7);
    assert.equal(a.settings.current.cacheKeep, 0.55);
    assert.ok(a.settings.lastProblems.some((p) => /cacheKeep = 7 must be a number from 0\.05 to 1; using 0\.55/.test(p)), a.settings.lastProblems.join('\n'));
    await setSetting('cachePolicy', 'magic');
    assert.equal(a.settings.current.cachePolicy, 'elastic');
    await setSetting('device', 'tpu');
    assert.equal(a.settings.current.device, 'auto');
  });

  let first: TurnRecord | undefined;
  it('asks about an image: a panel streams the answer with cache statistics', async () => {
    const a = await api();
    const states: string[] = [];
    const sub = a.host.onDidChangeState((s) => states.push(s));
    // The embedded model answers its short questions in one word; a description streams many tokens.
    first = await vscode.commands.executeCommand<TurnRecord>('elasticVlm.askAboutImage', wsFile(IMAGE), LONG_QUESTION);
    sub.dispose();
    assert.ok(first, 'a turn record');
    assert.equal(first.error, undefined, first.error?.message);
    assert.ok(first.answer.trim().length > 0, 'non-empty answer');
    assert.ok(first.tokens > 1, `streamed ${first.tokens} tokens`);
    assert.ok(first.stats && first.stats.tokensSeen > 0 && first.stats.perLayerLength.length > 0, 'cache stats');
    assert.ok(['eos', 'length'].includes(first.stopReason!), first.stopReason);
    assert.ok(states.includes('generating'), states.join());
    const panel = a.panels.get(wsFile(IMAGE));
    assert.ok(panel);
    assert.equal(panel.title, `VLM: ${IMAGE}`);
    await panel.whenReady();
    assert.match(a.statusBar.text, /VLM ready · cache \d+\/\d+ tokens/);
    console.log(`answer (${first.tokens} tokens, ${first.result?.executionProvider}): ${first.answer.slice(0, 120)}`);
  });

  it('reuses the panel of the same image and opens another one for another image', async () => {
    const a = await api();
    const before = a.panels.all.length;
    const again = await vscode.commands.executeCommand<TurnRecord>('elasticVlm.askAboutImage', wsFile(IMAGE), 'Describe the colors.');
    assert.equal(again.error, undefined);
    assert.equal(a.panels.all.length, before);
    assert.equal(a.panels.get(wsFile(IMAGE))!.transcript.length, 2);
    const other = await vscode.commands.executeCommand<TurnRecord>('elasticVlm.askAboutImage', wsFile(OTHER), 'What is this?');
    assert.equal(other.error, undefined);
    assert.equal(a.panels.all.length, before + 1);
  });

  it('continues a conversation with a follow-up, and starts over when the cache holds another image', async () => {
    const a = await api();
    const p = a.panels.get(wsFile(OTHER))!;
    const fu = await p.ask('And what color is it?', true);
    assert.equal(fu.error, undefined);
    assert.equal(fu.followUp, true, 'continued in the cache');
    const q = a.panels.get(wsFile(IMAGE))!;
    const fresh = await q.ask('Anything else?', true);
    assert.equal(fresh.error, undefined);
    assert.equal(fresh.followUp, false, 'another image was asked about since: a new conversation');
  });

  it('stops generating on elasticVlm.stop', async () => {
    const a = await api();
    await longAnswerSettings();
    const p = a.panels.get(wsFile(IMAGE))!;
    const pending = p.ask(LONG_QUESTION, false);
    const live = p.transcript[p.transcript.length - 1];
    assert.equal(live.question, LONG_QUESTION);
    await waitFor(() => live.tokens >= 3, 'a few tokens', 120_000);
    const stopped = await vscode.commands.executeCommand<boolean>('elasticVlm.stop');
    const rec = await pending;
    assert.equal(stopped, true, `nothing was generating any more (the answer ended: ${rec.stopReason}, ${rec.tokens} tokens)`);
    assert.equal(rec.stopReason, 'cancelled', `${rec.stopReason} after ${rec.tokens} tokens: ${rec.error?.message ?? rec.answer}`);
    assert.equal(rec.error, undefined);
    assert.ok(rec.tokens >= 3, `${rec.tokens} tokens`);
    // The same question left alone runs on to its end token: Stop really cut the answer short. (The worker is fine
    // after a Stop.)
    const whole = await p.ask(LONG_QUESTION, false);
    assert.equal(whole.error, undefined, whole.error?.message);
    assert.equal(whole.stopReason, 'eos');
    assert.ok(whole.tokens > rec.tokens + 5, `whole answer ${whole.tokens} tokens, stopped one ${rec.tokens}`);
    console.log(`stopped after ${rec.tokens} of ${whole.tokens} tokens`);
  });

  it('applies a settings change to the next question without a reload', async () => {
    const a = await api();
    const pid = a.host.workerPid;
    await setSetting('cachePolicy', 'h2o');
    await setSetting('cacheKeep', 0.25);
    const rec = await vscode.commands.executeCommand<TurnRecord>('elasticVlm.askAboutImage', wsFile(IMAGE), 'What shapes are there?');
    assert.equal(rec.error, undefined, rec.error?.message);
    assert.equal(rec.stats?.policy, 'h2o');
    assert.equal(rec.stats?.keep, 0.25);
    assert.ok(rec.stats!.bytes < rec.stats!.fullBytes, `compressed: ${rec.stats!.bytes} of ${rec.stats!.fullBytes} bytes`);
    assert.equal(a.host.workerPid, pid, 'same worker, no reload');
    // A follow-up typed in the panel after a cache change starts a new conversation with the new settings (the
    // worker keeps a conversation's first policy); without a change it continues the conversation.
    const panel = a.panels.get(wsFile(IMAGE))!;
    await setSetting('cachePolicy', 'streaming');
    const fu = await panel.ask('And what colors are there?', true);
    assert.equal(fu.error, undefined, fu.error?.message);
    assert.equal(fu.followUp, false, 'a new conversation for the new policy');
    assert.equal(fu.stats?.policy, 'streaming');
    const fu2 = await panel.ask('Anything else?', true);
    assert.equal(fu2.followUp, true, 'unchanged settings: the conversation continues');
    assert.equal(fu2.stats?.policy, 'streaming');
    // maxNewTokens: the long answer runs to its end token, then with a limit of 8 it stops at exactly 8 tokens,
    // the same first tokens (greedy decoding).
    await longAnswerSettings();
    const whole = await panel.ask(LONG_QUESTION, false);
    assert.equal(whole.stopReason, 'eos', whole.error?.message);
    assert.ok(whole.result!.generatedTokens > 8, `${whole.result!.generatedTokens} tokens`);
    await setSetting('maxNewTokens', 8);
    const short = await panel.ask(LONG_QUESTION, false);
    assert.equal(short.error, undefined, short.error?.message);
    assert.equal(short.stopReason, 'length');
    assert.equal(short.result!.generatedTokens, 8);
    assert.ok(short.tokens <= 8, `${short.tokens} tokens streamed`);
    assert.ok(whole.answer.startsWith(short.answer), `${JSON.stringify(short.answer)} is not the start of ${JSON.stringify(whole.answer)}`);
  });

  it('shows an error in the panel for a corrupt image, and the next question works', async () => {
    const a = await api();
    const rec = await vscode.commands.executeCommand<TurnRecord>('elasticVlm.askAboutImage', wsFile('corrupt.png'), 'What is this?');
    assert.ok(rec.error, 'an error');
    assert.equal(rec.error.code, 'bad-input', rec.error.message);
    assert.ok(a.panels.get(wsFile('corrupt.png')));
    const ok = await vscode.commands.executeCommand<TurnRecord>('elasticVlm.askAboutImage', wsFile(OTHER), 'What is this?');
    assert.equal(ok.error, undefined);
  });

  it('survives a worker killed mid-answer: the panel shows it, the next question starts a new worker', async () => {
    const a = await api();
    const p = a.panels.get(wsFile(OTHER))!;
    await longAnswerSettings();
    const pending = p.ask(LONG_QUESTION, false);
    await waitFor(() => p.transcript[p.transcript.length - 1].tokens >= 2, 'tokens', 120_000);
    const pid = a.host.workerPid!;
    process.kill(pid, 'SIGKILL');
    const rec = await pending;
    assert.equal(rec.error?.code, 'worker-exit', JSON.stringify(rec.error));
    assert.match(rec.error!.message, /SIGKILL/);
    const next = await p.ask('What is this?', true);
    assert.equal(next.error, undefined, next.error?.message);
    assert.equal(next.followUp, false);
    assert.notEqual(a.host.workerPid, pid);
  });

  it('serves the panel with a strict CSP and local resource roots limited to dist/, media/ and the image folder', async () => {
    const a = await api();
    const p = a.panels.get(wsFile(OTHER))!;
    const html = p.panel.webview.html;
    const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1] ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'nonce-[A-Za-z0-9+/=]{20,}'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*(?!\.vscode-cdn)|http:/);
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handlers');
    const scriptNonce = /script-src 'nonce-([^']+)'/.exec(csp)![1];
    assert.ok(!html.includes(`content="${scriptNonce}"`), 'the script nonce is not exposed in a meta tag');
    const roots = (p.panel.webview.options.localResourceRoots ?? []).map((u) => u.fsPath).sort();
    const ext = vscode.extensions.getExtension('elastic-vlm.elastic-vlm')!;
    assert.deepEqual(roots, [path.join(ext.extensionPath, 'dist'), path.join(ext.extensionPath, 'media'), path.dirname(wsFile(OTHER).fsPath)].sort());
  });

  it('ignores and logs malformed messages from the webview', async () => {
    const a = await api();
    const p = a.panels.get(wsFile(OTHER))!;
    const n = p.transcript.length;
    const onMessage = (p as unknown as { onMessage(m: unknown): Promise<void> }).onMessage.bind(p);
    for (const m of [{ type: 'eval', code: 'x' }, { type: 'ask', question: 'hi', image: '/etc/passwd' }, { type: 'setCache', policy: 'full', keep: 9 }, 'ask', null]) {
      await onMessage(m);
    }
    assert.equal(p.rejected.length, 5, p.rejected.join('\n'));
    assert.equal(p.transcript.length, n, 'nothing was asked');
  });

  it('uses the embedded model by default, and shows an error for a model folder that does not exist', async () => {
    const a = await api();
    const ext = vscode.extensions.getExtension(EXT_ID)!;
    const m = await a.host.resolveModel();
    assert.equal(m.embedded, true);
    assert.equal(m.label, 'embedded default model');
    assert.equal(path.resolve(m.modelDir), path.join(ext.extensionPath, 'models', 'default'));
    assert.equal(path.resolve(a.host.info!.modelDir), path.resolve(m.modelDir), 'the worker runs the embedded model');
    const missing = path.join(ext.extensionPath, 'no-such-model');
    try {
      await setSetting('modelPath', missing);
      const rec = await vscode.commands.executeCommand<TurnRecord>('elasticVlm.askAboutImage', wsFile(OTHER), 'What is this?');
      assert.equal(rec.error?.code, 'bad-input', JSON.stringify(rec.error));
      assert.match(rec.error!.message, /does not exist/);
    } finally {
      await setSetting('modelPath', undefined);
    }
    const ok = await vscode.commands.executeCommand<TurnRecord>('elasticVlm.askAboutImage', wsFile(OTHER), 'What is this?');
    assert.equal(ok.error, undefined, ok.error?.message);
  });
});
