// Command-line options shared by ask, eval and bench: parsed with node:util, validated with clear errors.
import { BadInputError } from '../errors.js';
import { DEVICES, IMAGE_DETAILS, isOneOf, POLICIES, type Device, type ImageDetail, type PolicyName } from '../protocol.js';

export function parseDevice(v: string | undefined): Device {
  const d = (v ?? 'auto') as Device;
  if (!DEVICES.includes(d)) throw new BadInputError(`unknown device ${JSON.stringify(v)} (expected ${DEVICES.join(', ')})`);
  return d;
}

export function parsePolicy(v: string | undefined, fallback: PolicyName = 'full'): PolicyName {
  const p = (v ?? fallback) as PolicyName;
  if (!POLICIES.includes(p)) throw new BadInputError(`unknown policy ${JSON.stringify(v)} (expected ${POLICIES.join(', ')})`);
  return p;
}

export function parseDetail(v: string | undefined): ImageDetail {
  const d = v ?? 'full';
  if (!isOneOf(IMAGE_DETAILS, d)) throw new BadInputError(`--detail must be one of ${IMAGE_DETAILS.join(', ')}, got ${JSON.stringify(v)}`);
  return d;
}

export function parseKeep(v: string | undefined, fallback = 1): number {
  if (v === undefined) return fallback;
  const k = Number(v);
  if (!Number.isFinite(k) || k <= 0 || k > 1) throw new BadInputError(`--keep must be a number in (0, 1], got ${JSON.stringify(v)}`);
  return k;
}

export function parseIntOption(name: string, v: string | undefined, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new BadInputError(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  return n;
}

/** Comma-separated and repeated values: `--keep 0.2,0.5 --keep 1`. */
export function listOption(v: string[] | string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}
