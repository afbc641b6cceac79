// Export and import over the REST API's polling protocols. Dumps and uploads travel through
// URLs this server hands out (as D1 hands out R2 URLs): unguessable, short-lived, and fetched
// without a token, as wrangler does. They are built from the configured public URL, never from a
// request's Host header, and a key serves only its own kind: an export's download key is no upload
// URL. An upload is held to the server's request body limit and must have the md5 announced at
// init, or nothing of it is kept.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { authorize, UNAUTHENTICATED } from '../auth.ts';
import type { DatabaseRecord } from '../catalog.ts';
import type { Env, ServerContext, Transfer } from '../context.ts';
import { HostError, NotPrimary } from '../host/failures.ts';
import type { HostOperations } from '../host/protocol.ts';
import { ErrorCodes, envelopeError, success } from '../protocols/envelope.ts';
import { ApiError, apiErrorOf, jsonBody } from '../protocols/api-errors.ts';
import { toldToClient } from '../request-log.ts';
import { primaryOf, relay } from './sql.ts';

const TRANSFER_TTL_MS = 60 * 60 * 1000;

const exportBody = z.object({
  output_format: z.literal('polling').optional(),
  dump_options: z
    .object({ no_data: z.boolean().optional(), no_schema: z.boolean().optional(), tables: z.array(z.string()).optional() })
    .optional(),
  current_bookmark: z.string().optional(),
});

const importBody = z.discriminatedUnion('action', [
  z.object({ action: z.literal('init'), etag: z.string().regex(/^[0-9a-f]{32}$/, 'etag must be the md5 of the file, in hex') }),
  z.object({ action: z.literal('ingest'), filename: z.string(), etag: z.string() }),
  z.object({ action: z.literal('poll'), current_bookmark: z.string().optional(), filename: z.string().optional() }),
]);

function transferDir(server: ServerContext, kind: 'exports' | 'imports'): string {
  const dir = path.join(server.catalog.dataDir, kind);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Removes what the transfer folders hold: on starting, every file there belongs to a transfer of an
 * earlier run, which no URL reaches any more (the transfers a server knows live in its memory).
 */
export function clearTransferFiles(dataDir: string): void {
  for (const kind of ['exports', 'imports']) rmSync(path.join(dataDir, kind), { recursive: true, force: true });
}

/** Ends the transfers past their time (called by each transfer request, and now and then by the server). */
export function expire(server: ServerContext): void {
  const now = Date.now();
  for (const [key, t] of server.transfers) {
    // An import still running is kept: its result is polled for when it ends.
    if (t.kind === 'import' && t.running) continue;
    if (t.expires < now) {
      rmSync(t.file, { force: true });
      server.transfers.delete(key);
    }
  }
}

/**
 * Exports and imports kept per database and kind, at most: a new one beyond them ends the oldest
 * (its file goes, its URL answers as expired). wrangler fetches an export, or uploads an import,
 * right after starting it; so the disk a token can fill with dumps and uploads stays bounded.
 */
const TRANSFERS_PER_DATABASE = 4;

/**
 * Adds a transfer, ending the oldest of its database and kind beyond TRANSFERS_PER_DATABASE: exports,
 * and imports not ingested yet (an ingested one keeps only its result; one being ingested reads its file).
 */
function keep(server: ServerContext, key: string, transfer: Transfer): void {
  const same = [...server.transfers].filter(([, t]) => t.kind === transfer.kind && t.database === transfer.database && (t.kind === 'export' || !t.ingest));
  for (const [oldKey, old] of same.slice(0, Math.max(0, same.length - TRANSFERS_PER_DATABASE + 1))) {
    rmSync(old.file, { force: true });
    server.transfers.delete(oldKey);
  }
  server.transfers.set(key, transfer);
}

/** Ends every export and import of a database (it is deleted): their files go, their URLs answer as expired. */
export function endTransfers(server: ServerContext, database: string): void {
  for (const [key, t] of server.transfers) {
    if (t.database !== database) continue;
    rmSync(t.file, { force: true });
    server.transfers.delete(key);
  }
}

/** The token a transfer is made by, for its URL to die with it (none on a server without tokens). */
function madeBy(grant: Env['Variables']['grant']): string | undefined {
  return grant.tokenId === UNAUTHENTICATED ? undefined : grant.tokenId;
}

/**
 * The transfer `key` names, if it is of this kind, not expired, and the token that made it is not
 * revoked (its URLs need no token: they would outlive it by up to an hour). A revoked token's
 * transfer is ended: its file goes, unless an import is reading it.
 */
function live<K extends Transfer['kind']>(server: ServerContext, key: string, kind: K): Extract<Transfer, { kind: K }> | undefined {
  const transfer = server.transfers.get(key);
  if (!transfer || transfer.kind !== kind || transfer.expires < Date.now()) return undefined;
  if (transfer.token !== undefined) {
    const token = server.catalog.token(transfer.token);
    if (!token || token.revoked_at !== null) {
      if (!(transfer.kind === 'import' && transfer.running)) {
        rmSync(transfer.file, { force: true });
        server.transfers.delete(key);
      }
      return undefined;
    }
  }
  return transfer as Extract<Transfer, { kind: K }>;
}

class UploadTooLarge extends Error {}

const UPLOAD_UNKNOWN = 'Unknown or expired upload URL: call import init for a new one';
/** An upload to a URL whose file was imported already (or is being) would only be kept on disk, unread. */
const UPLOAD_INGESTED = 'This upload URL was imported already: call import init for a new one';
/** One upload at a time per URL: each is streamed to disk, up to --max-import-bytes. */
const UPLOAD_BUSY = 'An upload to this URL is already being received: wait for it to end, or call import init for a new URL';

export function transferRoutes(server: ServerContext, database: (c: any, grant: Env['Variables']['grant']) => Promise<DatabaseRecord>) {
  const app = new Hono<Env>();

  app.post('/export', async (c) => {
    const record = await database(c, c.get('grant'));
    const primary = await primaryOf(server, record);
    if (primary !== 'self') return relay(server, c, primary);
    const body = await jsonBody(c, exportBody);
    expire(server);
    const key = randomBytes(24).toString('base64url');
    const file = path.join(transferDir(server, 'exports'), `${key}.sql`);
    const options = { noData: body.dump_options?.no_data, noSchema: body.dump_options?.no_schema, tables: body.dump_options?.tables };
    let exported: HostOperations['export']['value'];
    try {
      exported = await server.pool.call({ uuid: record.uuid, file: server.catalog.file(record.uuid) }, { op: 'export', file, options });
    } catch (e) {
      if (!(e instanceof HostError)) throw apiErrorOf(e);
      rmSync(file, { force: true });
      c.set('logReason', `export failed: ${e.message}`);
      return c.json(success({ success: false, type: 'export', status: 'error', messages: [], error: toldToClient(server, e.message) }));
    }
    const { bookmark } = exported;
    keep(server, key, { kind: 'export', file, expires: Date.now() + TRANSFER_TTL_MS, database: record.uuid, token: madeBy(c.get('grant')) });
    return c.json(
      success({
        success: true,
        type: 'export',
        at_bookmark: bookmark,
        status: 'complete',
        messages: [`Exported ${statSync(file).size} bytes`],
        error: null,
        result: { filename: `${record.uuid}.sql`, signed_url: `${server.settings.publicUrl}/dione/exports/${key}` },
      }),
    );
  });

  app.post('/import', async (c) => {
    const record = await database(c, c.get('grant'));
    authorize(c.get('grant'), 'write', record);
    // Every step of an import (the upload URL included) is the primary's.
    const primary = await primaryOf(server, record);
    if (primary !== 'self') return relay(server, c, primary);
    const body = await jsonBody(c, importBody);
    expire(server);
    if (body.action === 'init') {
      const key = randomBytes(24).toString('base64url');
      const file = path.join(transferDir(server, 'imports'), `${key}.sql`);
      keep(server, key, { kind: 'import', file, expires: Date.now() + TRANSFER_TTL_MS, etag: body.etag, database: record.uuid, token: madeBy(c.get('grant')) });
      return c.json(success({ success: true, filename: key, upload_url: `${server.settings.publicUrl}/dione/uploads/${key}` }));
    }
    const key = body.action === 'ingest' ? body.filename : (body.filename ?? body.current_bookmark ?? '');
    const known = server.transfers.get(key);
    const transfer = known?.kind === 'import' && known.database === record.uuid ? known : undefined;
    if (body.action === 'poll') {
      if (!transfer?.ingest) throw new ApiError(404, ErrorCodes.notFound, 'No import with that bookmark is known to this server');
      return c.json(success(await progress(server, transfer.ingest, key)));
    }
    if (!transfer) throw new ApiError(404, ErrorCodes.notFound, `Unknown upload ${body.filename}: call init first`);
    if (transfer.etag !== body.etag) throw new ApiError(400, ErrorCodes.badRequest, 'The etag does not match the one given at init');
    // Ingested already (or being ingested): the same answer, not a second import.
    if (transfer.ingest) return c.json(success(await progress(server, transfer.ingest, key)));
    if (!existsSync(transfer.file)) throw new ApiError(400, ErrorCodes.badRequest, 'Nothing was uploaded to the upload_url yet');
    transfer.running = true;
    const ingest = ingestUpload(server, record, transfer, key, (reason) => c.set('logReason', reason)).finally(() => {
      // Its result (or failure) is kept for polls for a while from now.
      transfer.running = false;
      transfer.expires = Date.now() + TRANSFER_TTL_MS;
    });
    transfer.ingest = ingest;
    return c.json(success(await progress(server, ingest, key)));
  });

  return app;
}

/**
 * The import's result once it ends, or after settings.importWaitMs that it is still active (polled by
 * its key): an import of GiBs outlasts any client's request timeout.
 */
async function progress(server: ServerContext, ingest: Promise<unknown>, key: string): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const waited = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), server.settings.importWaitMs);
  });
  try {
    return (await Promise.race([ingest, waited])) ?? { success: true, type: 'import', at_bookmark: key, status: 'active', messages: [], errors: [] };
  } finally {
    clearTimeout(timer);
  }
}

/** Imports an upload into its database; the result (complete or error) is kept for polls and later ingests. */
async function ingestUpload(
  server: ServerContext,
  record: DatabaseRecord,
  transfer: Extract<Transfer, { kind: 'import' }>,
  key: string,
  failed: (reason: string) => void,
): Promise<unknown> {
  let imported: HostOperations['import']['value']['response'] | undefined;
  let error: string | undefined;
  try {
    imported = (await server.pool.call({ uuid: record.uuid, file: server.catalog.file(record.uuid) }, { op: 'import', file: transfer.file })).response;
    if (!imported.success) error = imported.error;
  } catch (e) {
    if (e instanceof NotPrimary) throw new ApiError(503, ErrorCodes.sql, 'Another node became the primary of this database meanwhile; import again.');
    if (!(e instanceof HostError)) throw apiErrorOf(e);
    error = toldToClient(server, e.message);
  } finally {
    rmSync(transfer.file, { force: true });
  }
  if (error !== undefined || !imported?.success) {
    const result = { success: false, type: 'import', status: 'error', messages: [], errors: [error], error };
    transfer.result = result;
    failed(`import failed: ${error ?? 'nothing imported'}`);
    return result;
  }
  const num_queries = imported.statements;
  const result = {
    success: true,
    type: 'import',
    at_bookmark: key,
    status: 'complete',
    messages: [`Processed ${num_queries} queries.`],
    errors: [],
    // The totals of all its statements (wrangler prints them), the database's state after the last.
    result: { final_bookmark: imported.bookmark, num_queries, meta: imported.meta ?? { duration: 0, rows_read: 0, rows_written: 0, size_after: 0, changes: 0 } },
  };
  transfer.result = result;
  return result;
}

/** Streams one upload to disk; it becomes the import's file only when whole and with the announced md5. */
async function receiveUpload(
  c: Context<Env>,
  server: ServerContext,
  key: string,
  transfer: Extract<Transfer, { kind: 'import' }>,
  limit: number,
  tooLarge: () => Response,
): Promise<Response> {
  // Streamed to disk (a dump can be larger than memory), counted and hashed on the way, into a
  // file of this request's own: only a complete upload with the announced md5 becomes the import.
  const hash = createHash('md5');
  const partial = `${transfer.file}.${randomBytes(6).toString('hex')}.partial`;
  const body = c.req.raw.body ?? Readable.toWeb(Readable.from([]));
  const source = Readable.fromWeb(body as import('node:stream/web').ReadableStream);
  let size = 0;
  try {
    await pipeline(
      source,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          size += chunk.length;
          if (size > limit) throw new UploadTooLarge();
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(partial),
    );
  } catch (e) {
    rmSync(partial, { force: true });
    if (e instanceof UploadTooLarge) return tooLarge();
    return c.json(envelopeError(ErrorCodes.badRequest, 'The upload was interrupted; nothing was stored'), 400);
  }
  const md5 = hash.digest('hex');
  if (md5 !== transfer.etag) {
    rmSync(partial, { force: true });
    return c.json(
      envelopeError(ErrorCodes.badRequest, `The uploaded file's MD5 (${md5}) does not match the etag given at import init (${transfer.etag}); nothing was stored`),
      400,
    );
  }
  // Ended meanwhile (expired, or a newer import of the database took its place): nothing is kept.
  if (server.transfers.get(key) !== transfer) {
    rmSync(partial, { force: true });
    return c.json(envelopeError(ErrorCodes.notFound, UPLOAD_UNKNOWN), 404);
  }
  // Ingested while this upload streamed: its file would be kept, never read.
  if (transfer.ingest) {
    rmSync(partial, { force: true });
    return c.json(envelopeError(ErrorCodes.badRequest, UPLOAD_INGESTED), 409);
  }
  renameSync(partial, transfer.file);
  return c.body(null, 200, { etag: md5 });
}

/** The unauthenticated upload and download URLs. */
export function transferUrls(server: ServerContext) {
  const app = new Hono<Env>();

  app.put('/uploads/:key', async (c) => {
    // A refusal before the whole body is read closes the connection: the rest of the body is not
    // read, and the client must not send its next request on the same connection.
    const close = { connection: 'close' };
    expire(server);
    const transfer = live(server, c.req.param('key'), 'import');
    if (!transfer) return c.json(envelopeError(ErrorCodes.notFound, UPLOAD_UNKNOWN), 404, close);
    // Its file has been imported (or is being): another upload would only be kept on disk, unread.
    if (transfer.ingest) return c.json(envelopeError(ErrorCodes.badRequest, UPLOAD_INGESTED), 409, close);
    const limit = server.settings.maxImportBytes;
    const tooLarge = () =>
      c.json(envelopeError(ErrorCodes.tooLarge, `The SQL file is larger than ${limit} bytes, this server's limit for imports (--max-import-bytes); nothing was stored`), 413, close);
    if (Number(c.req.header('content-length')) > limit) return tooLarge();
    if (transfer.uploading) return c.json(envelopeError(ErrorCodes.badRequest, UPLOAD_BUSY), 409, close);
    transfer.uploading = true;
    try {
      return await receiveUpload(c, server, c.req.param('key'), transfer, limit, tooLarge);
    } finally {
      transfer.uploading = false;
    }
  });

  app.get('/exports/:key', (c) => {
    const transfer = live(server, c.req.param('key'), 'export');
    const expired = () => c.json(envelopeError(ErrorCodes.notFound, 'Unknown or expired download URL: export again for a new one'), 404);
    if (!transfer) return expired();
    let size: number;
    let file: ReturnType<typeof openSync>;
    try {
      // Opened first: a newer export may end this one (its file goes) at any time; an open file stays readable.
      file = openSync(transfer.file, 'r');
      size = fstatSync(file).size;
    } catch {
      return expired();
    }
    const stream = Readable.toWeb(createReadStream('', { fd: file })) as ReadableStream;
    return new Response(stream, { headers: { 'content-type': 'application/sql', 'content-length': String(size) } });
  });

  return app;
}
