// A database's SQL dump as pieces of text, from either kind of target: a local file is dumped
// here (the binding has no dump to SQL), a server's through the REST API's export protocol and the
// download URL it hands out.
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { openSqlite } from '../../engine/sqlite.ts';
import { type DumpSqlOptions, dumpSql } from '../../engine/dump-sql.ts';
import { CliError } from './output.ts';
import type { LocalTarget, RemoteTarget, Target } from './target.ts';

export interface SqlDump {
  /** The amount of work, in `unit`s, for a progress bar (0 when unknown). */
  total: number;
  unit: 'rows' | 'bytes';
  /** Whether it is big enough for a progress bar. */
  large: boolean;
  /** The dump in order; each piece with the work done once it is written. */
  pieces: AsyncIterable<{ text: string | Uint8Array; done: number }>;
}

const PIECE_CHARS = 1 << 20;

/** Lines joined by "\n" (no trailing newline, as wrangler writes them), in pieces of about a MiB. */
async function* joinLines(lines: Iterable<string>): AsyncGenerator<{ text: string; done: number }> {
  let buffer = '';
  let count = 0;
  for (const line of lines) {
    buffer += count === 0 ? line : `\n${line}`;
    count++;
    if (buffer.length >= PIECE_CHARS) {
      yield { text: buffer, done: count };
      buffer = '';
    }
  }
  yield { text: buffer, done: count };
}

function localDump(target: LocalTarget, options: DumpSqlOptions): SqlDump {
  const sqlite = openSqlite(target.file, { readonly: true, fileMustExist: true });
  const tables = sqlite
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
    .pluck()
    .all() as string[];
  // As wrangler: --table names tables (and views) exactly; a name that is none of them adds nothing.
  const wanted = options.tables ?? [];
  const selected = wanted.length ? tables.filter((t) => wanted.includes(t)) : tables;
  const rows = options.noData ? 0 : selected.reduce((n, t) => n + Number(sqlite.prepare(`SELECT count(*) FROM "${t.replaceAll('"', '""')}"`).pluck().get()), 0);
  async function* pieces() {
    try {
      yield* joinLines(dumpSql(sqlite, options));
    } finally {
      sqlite.close();
    }
  }
  return { total: rows, unit: 'rows', large: rows >= 10_000, pieces: pieces() };
}

interface ExportState {
  success: boolean;
  status: string;
  at_bookmark?: string;
  error?: string;
  result?: { signed_url: string };
}

async function remoteDump(target: RemoteTarget, options: DumpSqlOptions): Promise<SqlDump> {
  const { server, database } = target;
  const body = { output_format: 'polling', dump_options: { no_schema: options.noSchema, no_data: options.noData, tables: options.tables ?? [] } };
  let state = await server.onDatabase<ExportState>('POST', database.uuid, '/export', body, 'read');
  while (state.status === 'active') {
    await new Promise((r) => setTimeout(r, 500));
    state = await server.onDatabase<ExportState>('POST', database.uuid, '/export', { ...body, current_bookmark: state.at_bookmark }, 'read');
  }
  if (state.status === 'error' || !state.success || !state.result) throw new CliError(`Export of ${target.description} failed: ${state.error ?? 'unknown error'}`);
  const download = await fetch(state.result.signed_url);
  if (!download.ok || !download.body) throw new CliError(`Downloading the dump of ${target.description} failed: HTTP ${download.status}`);
  const size = Number(download.headers.get('content-length') ?? 0);
  const stream = Readable.fromWeb(download.body as NodeReadableStream);
  async function* pieces() {
    let got = 0;
    for await (const chunk of stream) {
      got += (chunk as Buffer).length;
      yield { text: chunk as Buffer, done: got };
    }
  }
  return { total: size, unit: 'bytes', large: size >= 1 << 20, pieces: pieces() };
}

export function sqlDump(target: Target, options: DumpSqlOptions): Promise<SqlDump> | SqlDump {
  return target.kind === 'local' ? localDump(target, options) : remoteDump(target, options);
}
