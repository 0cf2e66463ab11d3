import { parseRfc3339, type DeadLetterReason } from '@redrive/messaging';
import type { JobSummary, TimelineEntry } from '../audit/store.js';
import { OperationError } from './errors.js';
import type { DeadLetter, DeadLetterFilter } from './store.js';

/** A dead letter as lists show it (no payload, no headers). */
export interface DeadLetterView {
  id: number;
  jobId: string;
  type: string;
  reason: DeadLetterReason;
  errorClass: string | null;
  error: string | null;
  attempts: number;
  originalSubject: string;
  originalSeq: number;
  dlqSeq: number;
  createdAt: string;
  resolved: boolean;
  resolvedAt: string | null;
  resolvedBy: string | null;
  resolutionNote: string | null;
  redriveCount: number;
  lastRedrivenAt: string | null;
  lastRedrivenBy: string | null;
  payloadAvailable: boolean;
}

/** One dead letter in full: payload, headers and the job's timeline. */
export interface DeadLetterDetail extends DeadLetterView {
  originalStream: string;
  dlqStream: string;
  recordedAt: string;
  traceId: string | null;
  /** The payload as JSON, when it is JSON. */
  payload?: unknown;
  /** The payload's bytes, when they are not JSON. */
  payloadBase64?: string;
  headers: Record<string, string>;
  summary: JobSummary | null;
  timeline: TimelineEntry[];
}

/** Cursors are opaque to clients: the last id of the page, encoded. */
export function encodeCursor(id: number): string {
  return Buffer.from(`dl:${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const m = /^dl:(\d{1,18})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new OperationError('INVALID_CURSOR', 'cursor is not one this API returned');
  return Number(m[1]);
}

function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}

export function toView(dl: DeadLetter & { payloadAvailable?: boolean }): DeadLetterView {
  return {
    id: dl.id,
    jobId: dl.jobId,
    type: dl.type,
    reason: dl.reason,
    errorClass: dl.errorClass,
    error: dl.error,
    attempts: dl.attempts,
    originalSubject: dl.originalSubject,
    originalSeq: dl.originalSeq,
    dlqSeq: dl.dlqSeq,
    createdAt: dl.createdAt.toISOString(),
    resolved: dl.resolvedAt !== null,
    resolvedAt: iso(dl.resolvedAt),
    resolvedBy: dl.resolvedBy,
    resolutionNote: dl.resolutionNote,
    redriveCount: dl.redriveCount,
    lastRedrivenAt: iso(dl.lastRedrivenAt),
    lastRedrivenBy: dl.lastRedrivenBy,
    payloadAvailable: dl.payloadAvailable ?? dl.payload !== null,
  };
}

/** A payload as JSON when it parses, otherwise as base64. */
export function payloadFields(payload: Uint8Array | null): { payload?: unknown; payloadBase64?: string } {
  if (!payload) return {};
  try {
    return { payload: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) };
  } catch {
    return { payloadBase64: Buffer.from(payload).toString('base64') };
  }
}

/** An RFC 3339 time (with an offset) of a query, as UTC; 400 for anything else. */
export function dateParam(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const d = parseRfc3339(value);
  if (!d)
    throw new OperationError('VALIDATION_ERROR', `${name} must be an RFC 3339 time with an offset, got "${value}"`);
  return d.toISOString();
}

/** The filter with its times checked and normalised (RFC 3339 with an offset, as UTC). */
export function checkedFilter(f: DeadLetterFilter = {}): DeadLetterFilter {
  const from = dateParam('from', f.from);
  const to = dateParam('to', f.to);
  return { ...f, ...(from ? { from } : {}), ...(to ? { to } : {}) };
}
