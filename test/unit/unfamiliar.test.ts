// What the panel, the chat and the tool offer for an unfamiliar image: the downloaded models other than the one
// answering, labelled as Select Model labels them, and the words of the way out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MANIFEST } from '../../extension/downloadCore.js';
import { MAX_OFFERS, modelOffers, remedy, toolWarningText, unfamiliarWarning } from '../../extension/unfamiliar.js';

const warning = { code: 'unfamiliar-image' as const, message: 'This image looks unlike the images this model was trained on (familiarity score 9.0, threshold 2.2): its answer is likely wrong.', score: 9, threshold: 2.2 };

test('unfamiliarWarning picks the unfamiliar-image warning, or none', () => {
  assert.equal(unfamiliarWarning(undefined), undefined);
  assert.equal(unfamiliarWarning([]), undefined);
  assert.equal(unfamiliarWarning([warning]), warning);
});

test('modelOffers: downloaded models but the one answering, at most MAX_OFFERS, half-downloads left out', async () => {
  const root = mkdtempSync(join(tmpdir(), 'evlm-offers-'));
  try {
    assert.deepEqual(await modelOffers(join(root, 'none'), ''), []);
    const add = (name: string, repo: string, dtype: string) => {
      mkdirSync(join(root, name));
      writeFileSync(join(root, name, MANIFEST), JSON.stringify({ repo, dtype, endpoint: 'x', files: [], downloadedAt: '' }));
    };
    add('a--q4', 'HuggingFaceTB/SmolVLM-256M-Instruct', 'q4');
    add('b--fp32', 'HuggingFaceTB/SmolVLM-500M-Instruct', '');
    mkdirSync(join(root, 'c--int8.partial'));
    const offers = await modelOffers(root, join(root, 'b--fp32'));
    assert.deepEqual(offers, [{ id: 0, dir: join(root, 'a--q4'), label: 'SmolVLM-256M-Instruct (q4)' }]);
    const all = await modelOffers(root, '/elsewhere');
    assert.deepEqual(all.map((o) => o.label), ['SmolVLM-256M-Instruct (q4)', 'SmolVLM-500M-Instruct (fp32)']);
    assert.deepEqual(all.map((o) => o.id), [0, 1]);
    for (let i = 0; i < 5; i++) add(`m${i}--q4`, `x/M${i}`, 'q4');
    assert.equal((await modelOffers(root, '')).length, MAX_OFFERS);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the way out in words: Download Model, and the downloaded models by name', () => {
  assert.equal(remedy([]), 'A larger model answers such images: Elastic VLM: Download Model fetches a SmolVLM.');
  const offers = [{ id: 0, dir: '/m/a', label: 'SmolVLM-256M-Instruct (q4)' }];
  assert.match(remedy(offers), /or switch to SmolVLM-256M-Instruct \(q4\) \(already downloaded; Elastic VLM: Select Model\)\.$/);
  assert.equal(toolWarningText(warning, []), `Warning (unfamiliar-image): ${warning.message} ${remedy([])}`);
});
