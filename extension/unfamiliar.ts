// What the panel, the @vlm chat and the language-model tool say when an answer carries the unfamiliar-image
// warning (runtime/protocol.ts WARNING_CODES): the worker's one line, and the way out: Download Model, or a switch
// to a model already downloaded (Select Model's list, extension/modelSelect.ts). No `vscode` import: unit-tested.
import * as path from 'node:path';
import type { AskWarning } from '../runtime/protocol.js';
import { listInstalledModels } from './downloadCore.js';
import { MAX_OFFERS } from './webviewMessages.js';

/** A downloaded model the warning offers to switch to; `id` is its index in the offer list. */
export interface ModelOffer {
  id: number;
  label: string;
  dir: string;
}

export const DOWNLOAD_MODEL_COMMAND = 'elasticVlm.downloadModel';
export const SELECT_MODEL_COMMAND = 'elasticVlm.selectModel';
export { MAX_OFFERS };

/** The unfamiliar-image warning among a result's warnings, if any. */
export function unfamiliarWarning(warnings: readonly AskWarning[] | undefined): AskWarning | undefined {
  return warnings?.find((w) => w.code === 'unfamiliar-image');
}

const same = (a: string, b: string) => path.resolve(a) === path.resolve(b);

/** The downloaded models (under `modelsDir`) other than the one answering, labelled as Select Model labels them. */
export async function modelOffers(modelsDir: string, currentDir: string): Promise<ModelOffer[]> {
  const installed = await listInstalledModels(modelsDir);
  return installed
    .filter((m) => !same(m.dir, currentDir))
    .slice(0, MAX_OFFERS)
    .map((m, id) => ({ id, dir: m.dir, label: `${m.manifest.repo.split('/').pop()} (${m.manifest.dtype || 'fp32'})` }));
}

/** The way out, in words: for the chat's and the tool's text. */
export function remedy(offers: readonly ModelOffer[]): string {
  const use = offers.length ? `, or switch to ${offers.map((o) => o.label).join(' or ')} (already downloaded; Elastic VLM: Select Model)` : '';
  return `A larger model answers such images: Elastic VLM: Download Model fetches a SmolVLM${use}.`;
}

/** The tool's text for an unfamiliar image (an agent reads it, and may tell the user). */
export function toolWarningText(w: AskWarning, offers: readonly ModelOffer[]): string {
  return `Warning (${w.code}): ${w.message} ${remedy(offers)}`;
}
