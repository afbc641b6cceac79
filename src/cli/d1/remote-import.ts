// A SQL file run on a server as wrangler's `execute --remote --file` runs it: through the REST
// API's import (init with the file's MD5, the upload to the URL answered, ingest, polls until
// done), which the server applies as one transaction.
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CliError } from './output.ts';
import type { RemoteTarget } from './target.ts';

/** The import's meta, as the server answers it (wrangler prints it whole). */
export interface ImportMeta {
  duration: number;
  rows_read: number;
  rows_written: number;
  size_after: number;
  [field: string]: unknown;
}

export interface RemoteImport {
  num_queries: number;
  final_bookmark: string;
  meta: ImportMeta;
}

interface ImportState {
  success: boolean;
  status?: 'active' | 'complete' | 'error';
  at_bookmark?: string;
  messages?: string[];
  errors?: string[];
  error?: string;
  upload_url?: string;
  filename?: string;
  result?: RemoteImport;
}

const POLL_INTERVAL_MS = 500;

async function md5Of(file: string): Promise<string> {
  const hash = createHash('md5');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

async function upload(url: string, file: string, etag: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'PUT',
      headers: { 'content-length': String(statSync(file).size) },
      body: Readable.toWeb(createReadStream(file)) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e);
    throw new CliError(`File could not be uploaded. Please retry.`, { hint: `The upload to ${url} failed: ${cause}.` });
  }
  const text = await response.text();
  if (response.status === 413) {
    throw new CliError(`File could not be uploaded. Please retry.\nGot response: ${text}`, {
      hint: "The file is larger than the server's limit for imports (dione serve --max-import-bytes). Pass --chunk-size 1000 to send it in chunks of 1000 statements, each committed on its own.",
    });
  }
  if (response.status !== 200) throw new CliError(`File could not be uploaded. Please retry.\nGot response: ${text}`);
  if (response.headers.get('etag')?.replace(/^"|"$/g, '') !== etag) throw new CliError('File contents did not upload successfully. Please retry.');
}

/**
 * Imports `file` into the target's database; `say` gets the lines wrangler prints on the way. The
 * server's failure is thrown with its message (wrangler's), and nothing of the file is applied.
 */
export async function importThroughApi(target: RemoteTarget, file: string, say: (line: string) => void): Promise<RemoteImport> {
  const post = (body: Record<string, unknown>) => target.server.onDatabase<ImportState>('POST', target.database.uuid, '/import', body, 'write');
  const etag = await md5Of(file);
  const init = await post({ action: 'init', etag });
  let state = init;
  if (init.upload_url && init.filename) {
    say(`🌀 Uploading ${init.filename}`);
    await upload(init.upload_url, file, etag);
    say('🌀 Uploading complete.');
    state = await post({ action: 'ingest', filename: init.filename, etag });
  } else {
    say('🌀 File already uploaded. Processing.');
  }
  for (;;) {
    if (!state.success) throw new CliError(state.error ?? 'The import failed.', { hint: `Nothing of ${file} was applied: the import is one transaction.` });
    for (const line of state.messages ?? []) say(`🌀 ${line}`);
    if (state.status === 'complete' && state.result) return state.result;
    if (state.status === 'error') throw new CliError((state.errors ?? []).join('\n'), { hint: `Nothing of ${file} was applied: the import is one transaction.` });
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    state = await post({ action: 'poll', current_bookmark: state.at_bookmark });
  }
}
