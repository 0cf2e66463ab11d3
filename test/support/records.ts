import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh file path for handlers in another process to append JSON lines to ($RECORD_FILE). */
export function recordFilePath(label = 'records'): string {
  return join(mkdtempSync(join(tmpdir(), `redrive-${label}-`)), 'records.jsonl');
}

/** Every JSON line written to `file` so far, optionally only those of one job id. */
export function readRecords<T extends { id: string }>(file: string, id?: string): T[] {
  if (!existsSync(file)) return [];
  const all = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
  return id === undefined ? all : all.filter((r) => r.id === id);
}
