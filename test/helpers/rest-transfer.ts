// The REST API's export and import, as wrangler drives them (polling export then download; import
// init, upload, ingest, poll), for tests that move a dump between databases of a test server.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { fetchJson, jsonHeaders } from './server-checks.ts';
import type { TestServer } from './server.ts';

export interface DumpOptions {
  no_schema?: boolean;
  no_data?: boolean;
  tables?: string[];
}

function post(s: TestServer, database: string, route: 'export' | 'import', body: unknown) {
  return fetchJson(`${s.api}/${database}/${route}`, { method: 'POST', headers: jsonHeaders(s.token), body: JSON.stringify(body) });
}

/** The database's SQL dump through POST …/export and its signed URL. */
export async function restExport(s: TestServer, database: string, dump_options: DumpOptions = {}): Promise<string> {
  let reply = await post(s, database, 'export', { output_format: 'polling', dump_options });
  for (let i = 0; i < 50 && reply.body.result?.status === 'active'; i++) {
    reply = await post(s, database, 'export', { output_format: 'polling', dump_options, current_bookmark: reply.body.result.at_bookmark });
  }
  assert.equal(reply.body.result?.status, 'complete', `export of ${database}: ${JSON.stringify(reply.body)}`);
  const download = await fetch(reply.body.result.result.signed_url);
  assert.equal(download.status, 200);
  return download.text();
}

/** An import started and uploaded (init, then PUT to the upload URL): what an ingest names. */
export async function uploadImport(s: TestServer, database: string, sql: string): Promise<{ etag: string; filename: string }> {
  const etag = createHash('md5').update(sql).digest('hex');
  const init = await post(s, database, 'import', { action: 'init', etag });
  assert.equal(init.status, 200, JSON.stringify(init.body));
  const upload = await fetch(init.body.result.upload_url, { method: 'PUT', body: sql });
  assert.equal(upload.status, 200, await upload.text());
  return { etag, filename: init.body.result.filename };
}

/** POST …/import with `body` (an ingest or a poll): status and envelope. */
export function importCall(s: TestServer, database: string, body: unknown) {
  return post(s, database, 'import', body);
}

/** Runs `sql` into the database through POST …/import; the import's final status object. */
export async function restImport(s: TestServer, database: string, sql: string): Promise<{ status: string; error?: string }> {
  const { etag, filename } = await uploadImport(s, database, sql);
  let result = (await post(s, database, 'import', { action: 'ingest', etag, filename })).body.result;
  for (let i = 0; i < 50 && result.status === 'active'; i++) {
    result = (await post(s, database, 'import', { action: 'poll', current_bookmark: result.at_bookmark })).body.result;
  }
  return result;
}
