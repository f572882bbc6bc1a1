// ELASTIC_VLM_WEBGPU parsing (runtime/model/sessions.ts): key=value pairs into the WebGPU provider's config entries.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { webgpuSettings } from '../../runtime/model/sessions.js';
import { BadInputError } from '../../runtime/errors.js';

describe('webgpuSettings', () => {
  it('reads comma-separated key=value pairs, trimmed; empty gives none', () => {
    assert.deepEqual(webgpuSettings(''), {});
    assert.deepEqual(webgpuSettings(' validationMode=basic , maxNumPendingDispatches=64'), { validationMode: 'basic', maxNumPendingDispatches: '64' });
  });
  it('a pair without a key or an = is a one-line error', () => {
    assert.throws(() => webgpuSettings('validationMode'), (e: Error) => e instanceof BadInputError && /"validationMode" is not key=value/.test(e.message));
    assert.throws(() => webgpuSettings('=1'), BadInputError);
  });
});
