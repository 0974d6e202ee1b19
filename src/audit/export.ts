/**
 * Streams the log out in jsonl, csv or OCSF (JSON lines). Reads oldest-first through the store's
 * stream and waits for `drain` whenever the destination is full, so memory stays flat however
 * many events there are.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Store } from '../store/store.js';
import { csvHeader, csvRow } from './csv.js';
import type { AuditEvent, AuditFilter } from './event.js';
import { toOcsf } from './ocsf.js';

export const EXPORT_FORMATS = ['jsonl', 'csv', 'ocsf'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportProgress {
  events: number;
  bytes: number;
}

const FLUSH_BYTES = 64 * 1024;
const PROGRESS_EVERY = 10_000;

function formatter(format: ExportFormat, productVersion: string): (e: AuditEvent) => string {
  switch (format) {
    case 'jsonl':
      return (e) => JSON.stringify(e) + '\n';
    case 'csv':
      return csvRow;
    case 'ocsf':
      return (e) => JSON.stringify(toOcsf(e, productVersion)) + '\n';
    default: {
      const never: never = format;
      throw new Error(`unknown export format ${String(never)}`);
    }
  }
}

export async function exportAudit(
  store: Pick<Store, 'audit'>,
  filter: AuditFilter,
  format: ExportFormat,
  out: Writable,
  onProgress?: (p: ExportProgress) => void,
  productVersion = '0.1.0',
): Promise<ExportProgress> {
  const line = formatter(format, productVersion);
  const progress: ExportProgress = { events: 0, bytes: 0 };
  let pending = format === 'csv' ? csvHeader() : '';
  const flush = async () => {
    if (pending.length === 0) return;
    progress.bytes += Buffer.byteLength(pending);
    const ok = out.write(pending);
    pending = '';
    if (!ok) await once(out, 'drain');
  };
  for await (const e of store.audit.stream(filter)) {
    pending += line(e);
    progress.events += 1;
    if (pending.length >= FLUSH_BYTES) await flush();
    if (onProgress && progress.events % PROGRESS_EVERY === 0) onProgress({ ...progress });
  }
  await flush();
  onProgress?.({ ...progress });
  return progress;
}
