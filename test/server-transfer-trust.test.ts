// What an attacker can do to a server's transfer URLs, REST paths and /metrics, refused: an export's
// download key is no upload URL; an upload is held to the request body limit and to the md5 the
// client announced at import init, and nothing of a refused upload is kept; the URLs handed out come
// from the server's configuration (--public-url), never from a forged Host header; a path whose
// percent-encoding does not decode is a 400/404 in the usual envelope (never a 500, never decoded
// twice); /metrics needs a token unless the server is started with --metrics-public.
//
// Real servers on 127.0.0.1 with real data directories: one in this process (a small body limit, the
// default public URL), and `dione serve` child processes for the command-line flags.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { connect } from '../src/client/connect.ts';
import { Catalog } from '../src/server/catalog.ts';
import { parsePublicUrl, startServer } from '../src/server/serve.ts';
import { createToken } from '../src/server/tokens.ts';
import { type SpawnedServer, spawnServer, startTestServer, type TestServer } from './helpers/server.ts';
import { dioneCli } from './helpers/server-checks.ts';

/** The server's limit on request bodies; uploads to import URLs have their own, IMPORT_LIMIT. */
const LIMIT = 64 * 1024;
const IMPORT_LIMIT = 4 * LIMIT;
const md5 = (data: string | Buffer) => createHash('md5').update(data).digest('hex');

interface Envelope<T = unknown> {
  success: boolean;
  result: T;
  errors: { code: number; message: string }[];
}
interface InitResult {
  success: boolean;
  filename: string;
  upload_url: string;
}
interface ExportResult {
  status: string;
  result: { filename: string; signed_url: string };
}
interface ImportResult {
  success: boolean;
  status: string;
  error?: string;
  result?: { num_queries: number };
}

/** One HTTP request to 127.0.0.1 with exactly these headers and this path (a forged Host, a raw path). */
function raw(
  base: string,
  method: string,
  rawPath: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port: Number(port), method, path: rawPath, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text }));
      response.on('error', reject);
    });
    request.setTimeout(10_000, () => request.destroy(new Error(`${method} ${rawPath}: no answer in 10 s`)));
    request.on('error', reject);
    request.end(body);
  });
}

/** The files under a server's imports directory (uploads waiting to be ingested, partial or whole). */
function importFiles(dataDir: string): string[] {
  try {
    return readdirSync(path.join(dataDir, 'imports'));
  } catch {
    return [];
  }
}

let s: TestServer;

async function rest<T>(method: string, pathAfterApi: string, body?: unknown, server: TestServer = s): Promise<Envelope<T>> {
  const response = await server.call(`${server.api}${pathAfterApi}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  return (await response.json()) as Envelope<T>;
}

async function values(database: string): Promise<number[]> {
  const { results } = await connect({ url: s.url, token: s.token, database }).prepare('SELECT v FROM t ORDER BY v').all<{ v: number }>();
  return results.map((r) => r.v);
}

/** A PUT of `file` to `url` that sends its first 10 bytes now and the rest at finish(). */
function slowUpload(url: string, file: string): { done: Promise<Response>; finish: () => void } {
  let finish!: () => void;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const bytes = new TextEncoder().encode(file);
      controller.enqueue(bytes.subarray(0, 10));
      finish = () => {
        controller.enqueue(bytes.subarray(10));
        controller.close();
      };
    },
  });
  return { done: fetch(url, { method: 'PUT', body, duplex: 'half' } as RequestInit), finish };
}

async function seeded(name: string): Promise<void> {
  await s.createDatabase(name);
  const db = connect({ url: s.url, token: s.token, database: name });
  await db.exec('CREATE TABLE t (v INTEGER)');
  await db.prepare('INSERT INTO t VALUES (1), (2)').run();
}

async function init(database: string, etag: string): Promise<InitResult> {
  const answer = await rest<InitResult>('POST', `/${database}/import`, { action: 'init', etag });
  assert.ok(answer.success, JSON.stringify(answer));
  return answer.result;
}

before(async () => {
  s = await startTestServer({ maxBodyBytes: LIMIT, maxImportBytes: IMPORT_LIMIT });
});

after(async () => {
  await s?.close();
});

describe('upload URLs', () => {
  test('an export key is no upload URL: the dump stays as exported and cannot be ingested', async () => {
    await seeded('trust-export');
    const exported = await rest<ExportResult>('POST', '/trust-export/export', { output_format: 'polling' });
    assert.ok(exported.success, JSON.stringify(exported));
    const signedUrl = exported.result.result.signed_url;
    const key = signedUrl.split('/').pop()!;
    const before = await (await fetch(signedUrl)).text();
    assert.match(before, /INSERT INTO "t" \("v"\) VALUES\(2\);/);

    const forged = 'DROP TABLE t;';
    const put = await fetch(`${s.url}/dione/uploads/${key}`, { method: 'PUT', body: forged });
    assert.equal(put.status, 404);
    const refusal = (await put.json()) as Envelope;
    assert.equal(refusal.success, false);
    assert.match(refusal.errors[0]!.message, /Unknown or expired upload URL/);
    assert.equal(await (await fetch(signedUrl)).text(), before, 'the download must still be the export');

    const ingest = await s.call(`${s.api}/trust-export/import`, { method: 'POST', body: JSON.stringify({ action: 'ingest', filename: key, etag: md5(forged) }) });
    assert.equal(ingest.status, 404);
    assert.deepEqual(await values('trust-export'), [1, 2]);
    // and an import key is no download URL
    const { upload_url } = await init('trust-export', md5('SELECT 1;'));
    assert.equal((await fetch(`${s.url}/dione/exports/${upload_url.split('/').pop()}`)).status, 404);
  });

  test('an upload larger than the import limit is a 413 and nothing of it is stored', async () => {
    await seeded('trust-large');
    const big = `${'INSERT INTO t VALUES (3);\n'.repeat(Math.ceil((IMPORT_LIMIT + 1) / 26))}`;
    assert.ok(Buffer.byteLength(big) > IMPORT_LIMIT);
    const { upload_url, filename } = await init('trust-large', md5(big));

    // Announced by Content-Length (as wrangler sends it) ...
    const declared = await fetch(upload_url, { method: 'PUT', body: big, headers: { 'content-length': String(Buffer.byteLength(big)) } });
    assert.equal(declared.status, 413);
    const refusal = (await declared.json()) as Envelope;
    assert.equal(refusal.success, false);
    assert.equal(refusal.errors[0]!.code, 7413);
    assert.match(refusal.errors[0]!.message, new RegExp(`larger than ${IMPORT_LIMIT} bytes, this server's limit for imports.*nothing was stored`));
    assert.deepEqual(importFiles(s.dataDir), []);

    // ... or streamed without a length: counted as it comes.
    const chunk = Buffer.alloc(16 * 1024, 'x');
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= IMPORT_LIMIT * 4) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const streamed = await fetch(upload_url, { method: 'PUT', body: stream, duplex: 'half' } as RequestInit);
    assert.equal(streamed.status, 413);
    assert.equal(((await streamed.json()) as Envelope).errors[0]!.code, 7413);
    assert.deepEqual(importFiles(s.dataDir), []);

    const ingest = await rest<ImportResult>('POST', '/trust-large/import', { action: 'ingest', filename, etag: md5(big) });
    assert.equal(ingest.success, false);
    assert.match(ingest.errors[0]!.message, /Nothing was uploaded/);
    assert.deepEqual(await values('trust-large'), [1, 2]);
  });

  test('an import larger than the request body limit is taken whole (imports have their own limit)', async () => {
    await seeded('trust-big-import');
    const lines = Array.from({ length: Math.ceil((2 * LIMIT) / 30) }, (_, i) => `INSERT INTO t VALUES (${i + 3});\n`);
    const sql = lines.join('');
    assert.ok(Buffer.byteLength(sql) > LIMIT && Buffer.byteLength(sql) < IMPORT_LIMIT);
    const etag = md5(sql);
    const { upload_url, filename } = await init('trust-big-import', etag);
    assert.equal((await fetch(upload_url, { method: 'PUT', body: sql })).status, 200);
    const ingest = await rest<ImportResult>('POST', '/trust-big-import/import', { action: 'ingest', filename, etag });
    assert.ok(ingest.success && ingest.result.success, JSON.stringify(ingest));
    assert.equal(ingest.result.result?.num_queries, lines.length);
    assert.equal((await values('trust-big-import')).length, lines.length + 2);
  });

  test('an upload whose md5 is not the etag given at init is refused and nothing is kept or imported', async () => {
    await seeded('trust-hash');
    const announced = 'INSERT INTO t VALUES (3);';
    const sent = 'DELETE FROM t;';
    const { upload_url, filename } = await init('trust-hash', md5(announced));
    const put = await fetch(upload_url, { method: 'PUT', body: sent });
    assert.equal(put.status, 400);
    assert.equal(put.headers.get('etag'), null);
    const refusal = (await put.json()) as Envelope;
    assert.equal(refusal.success, false);
    assert.equal(refusal.errors[0]!.code, 7400);
    assert.equal(
      refusal.errors[0]!.message,
      `The uploaded file's MD5 (${md5(sent)}) does not match the etag given at import init (${md5(announced)}); nothing was stored`,
    );
    assert.deepEqual(importFiles(s.dataDir), []);
    for (const etag of [md5(announced), md5(sent)]) {
      const ingest = await rest<ImportResult>('POST', '/trust-hash/import', { action: 'ingest', filename, etag });
      assert.equal(ingest.success, false, JSON.stringify(ingest));
    }
    assert.deepEqual(await values('trust-hash'), [1, 2]);
  });

  test('an upload with the announced md5, to the URL as handed out, is imported', async () => {
    await seeded('trust-ok');
    const file = 'INSERT INTO t VALUES (3);\nINSERT INTO t VALUES (4);\n';
    const etag = md5(file);
    const { upload_url, filename } = await init('trust-ok', etag);
    assert.ok(upload_url.startsWith(`${s.url}/dione/uploads/`), upload_url);
    const put = await fetch(upload_url, { method: 'PUT', body: file, headers: { 'content-length': String(Buffer.byteLength(file)) } });
    assert.equal(put.status, 200);
    assert.equal(put.headers.get('etag')?.replace(/^"|"$/g, ''), etag);
    const ingest = await rest<ImportResult>('POST', '/trust-ok/import', { action: 'ingest', filename, etag });
    assert.ok(ingest.success && ingest.result.success && ingest.result.status === 'complete', JSON.stringify(ingest));
    assert.equal(ingest.result.result?.num_queries, 2);
    assert.deepEqual(await values('trust-ok'), [1, 2, 3, 4]);
    assert.deepEqual(importFiles(s.dataDir), []);
  });

  // Found by an attacker's review: an upload URL stayed open after its ingest, so the same file could
  // be put again and again, each kept on disk unread (past the limit of 4 pending per database).
  test('an upload URL whose file was imported (or failed to) takes no other upload', async () => {
    await seeded('trust-again');
    for (const file of ['INSERT INTO t VALUES (5);\n', 'GARBAGE;\n']) {
      const etag = md5(file);
      const { upload_url, filename } = await init('trust-again', etag);
      assert.equal((await fetch(upload_url, { method: 'PUT', body: file })).status, 200);
      await rest<ImportResult>('POST', '/trust-again/import', { action: 'ingest', filename, etag });
      const again = await fetch(upload_url, { method: 'PUT', body: file });
      assert.equal(again.status, 409, file);
      assert.match(((await again.json()) as Envelope).errors[0]!.message, /imported already/);
      assert.deepEqual(importFiles(s.dataDir), [], file);
    }
    assert.deepEqual(await values('trust-again'), [1, 2, 5]);
  });

  // The second review: an upload already streaming when the file was ingested was kept afterwards.
  test('an upload still streaming when its URL is ingested is refused at its end, and nothing of it is kept', async () => {
    await seeded('trust-race');
    const file = 'INSERT INTO t VALUES (7);\n';
    const etag = md5(file);
    const { upload_url, filename } = await init('trust-race', etag);
    assert.equal((await fetch(upload_url, { method: 'PUT', body: file })).status, 200);
    const { done: late, finish } = slowUpload(upload_url, file);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const ingest = await rest<ImportResult>('POST', '/trust-race/import', { action: 'ingest', filename, etag });
    assert.equal(ingest.result.status, 'complete', JSON.stringify(ingest));
    finish();
    assert.equal((await late).status, 409);
    assert.deepEqual(importFiles(s.dataDir), []);
    assert.deepEqual(await values('trust-race'), [1, 2, 7]);
  });

  // The third review: 12 uploads to one URL at once each streamed to a file of its own (each
  // allowed --max-import-bytes), so one URL could fill the disk many times over.
  test('an upload URL takes one upload at a time: another at the same time is refused and stores nothing', async () => {
    await seeded('trust-one');
    const file = 'INSERT INTO t VALUES (8);\n';
    const etag = md5(file);
    const { upload_url, filename } = await init('trust-one', etag);
    const { done: first, finish } = slowUpload(upload_url, file);
    await new Promise((resolve) => setTimeout(resolve, 200));
    try {
      assert.equal(importFiles(s.dataDir).length, 1, 'the first upload is being received');
      for (let i = 0; i < 3; i++) {
        const second = await fetch(upload_url, { method: 'PUT', body: file });
        assert.equal(second.status, 409);
        assert.match(((await second.json()) as Envelope).errors[0]!.message, /already being received/);
      }
      assert.equal(importFiles(s.dataDir).length, 1, 'nothing of the refused ones on disk');
    } finally {
      finish();
    }
    assert.equal((await first).status, 200);
    // Once it ended, the URL takes an upload again (until the file is ingested).
    assert.equal((await fetch(upload_url, { method: 'PUT', body: file })).status, 200);
    const ingest = await rest<ImportResult>('POST', '/trust-one/import', { action: 'ingest', filename, etag });
    assert.equal(ingest.result.status, 'complete', JSON.stringify(ingest));
    assert.deepEqual(await values('trust-one'), [1, 2, 8]);
  });

  // The third review: a download or upload URL needs no token, so it outlived the token that made it by up to an hour.
  test("revoking a token ends the exports and imports it started: their URLs answer as expired, their files go", async () => {
    await seeded('trust-revoked');
    const tokenId = (token: string) => /^dione_([A-Za-z0-9]{12})_/.exec(token)![1]!;
    const revoke = async (token: string) => {
      const answer = await s.call(`${s.url}/dione/v1/tokens/${tokenId(token)}`, { method: 'DELETE' });
      assert.equal(answer.status, 200, await answer.text());
    };
    const reader = s.tokenFor('read', 'trust-revoked');
    const exported = await s.call(`${s.api}/trust-revoked/export`, { method: 'POST', body: JSON.stringify({ output_format: 'polling' }), token: reader });
    const signedUrl = ((await exported.json()) as Envelope<{ result: { signed_url: string } }>).result.result.signed_url;
    const files = () => readdirSync(path.join(s.dataDir, 'exports'));
    const before = files().length;
    assert.equal((await fetch(signedUrl)).status, 200, 'downloadable while the token holds');
    await revoke(reader);
    assert.equal((await fetch(signedUrl)).status, 404);
    assert.equal(files().length, before - 1, 'its dump is gone');

    const writer = s.tokenFor('write', 'trust-revoked');
    const file = 'INSERT INTO t VALUES (9);\n';
    const started = await s.call(`${s.api}/trust-revoked/import`, { method: 'POST', body: JSON.stringify({ action: 'init', etag: md5(file) }), token: writer });
    const { upload_url } = ((await started.json()) as Envelope<InitResult>).result;
    await revoke(writer);
    const put = await fetch(upload_url, { method: 'PUT', body: file });
    assert.equal(put.status, 404);
    assert.deepEqual(importFiles(s.dataDir), []);
    // Transfers made by a token still valid are untouched.
    const { upload_url: other } = await init('trust-revoked', md5(file));
    assert.equal((await fetch(other, { method: 'PUT', body: file })).status, 200);
  });

  test('uploads and dumps an earlier run left are removed when the server starts', async () => {
    const first = await startTestServer();
    try {
      await first.createDatabase('left');
      const { upload_url } = (await rest<InitResult>('POST', '/left/import', { action: 'init', etag: md5('SELECT 1;') }, first)).result;
      assert.equal((await fetch(upload_url, { method: 'PUT', body: 'SELECT 1;' })).status, 200);
      assert.equal(importFiles(first.dataDir).length, 1);
      await first.server.close();
      // The same data, a new run.
      const second = await startServer({ port: 0, data: first.dataDir, logger: pino({ level: 'silent' }) });
      try {
        assert.deepEqual(importFiles(first.dataDir), []);
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
    }
  });
});

describe('URLs handed out come from the configuration', () => {
  const forgedHost = 'evil.example:6666';

  async function handedOut(base: string, account: string, database: string, token: string): Promise<{ upload: string; download: string }> {
    const api = `/client/v4/accounts/${account}/d1/database/${database}`;
    const headers = { host: forgedHost, authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const initAnswer = await raw(base, 'POST', `${api}/import`, headers, JSON.stringify({ action: 'init', etag: md5('SELECT 1;') }));
    assert.equal(initAnswer.status, 200, initAnswer.text);
    const exportAnswer = await raw(base, 'POST', `${api}/export`, headers, JSON.stringify({ output_format: 'polling' }));
    assert.equal(exportAnswer.status, 200, exportAnswer.text);
    return {
      upload: (JSON.parse(initAnswer.text) as Envelope<InitResult>).result.upload_url,
      download: (JSON.parse(exportAnswer.text) as Envelope<ExportResult>).result.result.signed_url,
    };
  }

  test('by default, the address the server listens on, whatever Host the request names', async () => {
    await seeded('trust-host');
    const { upload, download } = await handedOut(s.url, s.accountId, 'trust-host', s.token);
    for (const url of [upload, download]) {
      assert.ok(!url.includes('evil'), url);
      assert.ok(url.startsWith(`${s.url}/dione/`), url);
    }
    assert.match(await (await fetch(download)).text(), /VALUES\(2\);/);
  });

  describe('dione serve --public-url --metrics-public', () => {
    let dataDir: string;
    let served: SpawnedServer | undefined;
    let token: string;

    before(async () => {
      dataDir = mkdtempSync(path.join(tmpdir(), 'dione-trust-'));
      served = await spawnServer(dataDir, ['--public-url', 'https://d1.example.test/behind/proxy/', '--metrics-public']);
      const catalog = new Catalog(dataDir);
      try {
        token = createToken(catalog, 'admin', null).token;
      } finally {
        catalog.close();
      }
      const created = await fetch(`${served.url}/client/v4/accounts/${served.accountId}/d1/database`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'proxied' }),
      });
      assert.equal(created.status, 200, await created.text());
    });

    after(async () => {
      const child = served?.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    });

    test('export and upload URLs are built from --public-url, and its keys work behind it', async () => {
      const { upload, download } = await handedOut(served!.url, served!.accountId, 'proxied', token);
      assert.ok(upload.startsWith('https://d1.example.test/behind/proxy/dione/uploads/'), upload);
      assert.ok(download.startsWith('https://d1.example.test/behind/proxy/dione/exports/'), download);
      assert.ok(!`${upload}${download}`.includes('evil'));
      // What the proxy would pass on: the same path on this server.
      const local = (url: string) => `${served!.url}${new URL(url).pathname.replace('/behind/proxy', '')}`;
      const put = await fetch(local(upload), { method: 'PUT', body: 'SELECT 1;' });
      assert.equal(put.status, 200);
      assert.equal((await fetch(local(download))).status, 200);
      assert.match(served!.stderr(), /public URL https:\/\/d1\.example\.test\/behind\/proxy\n/);
    });

    test('/metrics answers without a token under --metrics-public', async () => {
      const reply = await fetch(`${served!.url}/metrics`);
      assert.equal(reply.status, 200);
      assert.match(await reply.text(), /dione_requests_total/);
    });
  });

  test('DIONE_PUBLIC_URL and DIONE_METRICS_PUBLIC=1 do what the flags do', async (t) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'dione-trust-'));
    const saved = { url: process.env.DIONE_PUBLIC_URL, metrics: process.env.DIONE_METRICS_PUBLIC };
    let child: SpawnedServer['child'] | undefined;
    t.after(async () => {
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child!.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    });
    process.env.DIONE_PUBLIC_URL = 'http://dione.example.test:9000';
    process.env.DIONE_METRICS_PUBLIC = '1';
    let spawned: SpawnedServer;
    try {
      spawned = await spawnServer(dataDir); // the child takes this process's environment
    } finally {
      for (const [name, value] of [['DIONE_PUBLIC_URL', saved.url], ['DIONE_METRICS_PUBLIC', saved.metrics]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    child = spawned.child;
    assert.match(spawned.stderr(), /public URL http:\/\/dione\.example\.test:9000\n/);
    assert.equal((await fetch(`${spawned.url}/metrics`)).status, 200);
  });

  test('a public URL must be an absolute http(s) URL without query, fragment or credentials', async (t) => {
    assert.equal(parsePublicUrl('https://d1.example.test/'), 'https://d1.example.test');
    assert.equal(parsePublicUrl('http://127.0.0.1:8787/x//'), 'http://127.0.0.1:8787/x');
    for (const bad of ['d1.example.test', 'ftp://d1.example.test', 'https://d1.example.test/?a=1', 'https://d1.example.test/#x', 'https://u:p@d1.example.test']) {
      assert.throws(() => parsePublicUrl(bad), /public URL/, bad);
    }
    const dataDir = mkdtempSync(path.join(tmpdir(), 'dione-trust-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const refused = await dioneCli(['serve', '--port', '0', '--data', dataDir, '--public-url', 'ftp://d1.example.test'], 30_000);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /--public-url: the public URL must be an http:\/\/ or https:\/\/ URL/);
  });
});

describe('paths whose percent-encoding does not decode', () => {
  test('answer 400 or 404 in the usual envelope, are decoded once, and the server goes on', async () => {
    await seeded('shop');
    const api = `/client/v4/accounts/${s.accountId}/d1/database`;
    const auth = { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' };
    const query = JSON.stringify({ sql: 'SELECT 1' });
    const cases: [string, string, string?][] = [
      ['POST', `${api}/%ZZ/query`, query],
      ['POST', `${api}/%/query`, query],
      ['POST', `${api}/%25/query`, query],
      ['POST', `${api}/%2525/raw`, query],
      ['GET', `${api}/%`],
      ['GET', `${api}/%25`],
      ['GET', `${api}/%ZZ`],
      ['GET', `${api}/%E0%A4%A`],
      ['GET', `${api}/%C0/time_travel/bookmark`],
      ['DELETE', `${api}/%FF`],
      ['POST', `${api}/%ZZ/export`, JSON.stringify({ output_format: 'polling' })],
      ['GET', `/client/v4/accounts/%ZZ/d1/database`],
      ['GET', `/client/v4/accounts/${s.accountId}%/d1/database/shop`],
      ['PUT', `/dione/uploads/%ZZ`, 'SELECT 1;'],
    ];
    for (const [method, rawPath, body] of cases) {
      const answer = await raw(s.url, method, rawPath, auth, body);
      assert.ok(answer.status === 400 || answer.status === 404, `${method} ${rawPath}: ${answer.status} ${answer.text}`);
      const envelope = JSON.parse(answer.text) as Envelope;
      assert.equal(envelope.success, false, `${method} ${rawPath}`);
      assert.equal(envelope.result, null, `${method} ${rawPath}`);
      assert.equal(typeof envelope.errors[0]?.code, 'number', `${method} ${rawPath}: ${answer.text}`);
      assert.equal(typeof envelope.errors[0]?.message, 'string', `${method} ${rawPath}`);
    }
    // dione/client's protocol answers in its own shape.
    const dione = await raw(s.url, 'POST', '/dione/v1/databases/%ZZ/execute', auth, JSON.stringify({ statements: [{ sql: 'SELECT 1' }] }));
    assert.equal(dione.status, 400, dione.text);
    assert.deepEqual(JSON.parse(dione.text), { success: false, error: 'Malformed percent-encoding in the request path' });

    // Decoded once: %256F is "%6F", which names no database; decoded twice it would be "o", naming shop.
    const once = await raw(s.url, 'GET', `${api}/sh%256Fp`, auth);
    assert.equal(once.status, 404, once.text);
    assert.equal((JSON.parse(once.text) as Envelope).errors[0]!.code, 7404);
    const encoded = await raw(s.url, 'GET', `${api}/sh%6Fp`, auth);
    assert.equal(encoded.status, 200, encoded.text);

    const still = await raw(s.url, 'POST', `${api}/shop/query`, auth, JSON.stringify({ sql: 'SELECT v FROM t ORDER BY v' }));
    assert.equal(still.status, 200, still.text);
    assert.deepEqual((JSON.parse(still.text) as Envelope<{ results: { v: number }[] }[]>).result[0]!.results, [{ v: 1 }, { v: 2 }]);
  });
});

describe('/metrics', () => {
  test('401 without a token or with a bad one; 200 with a token of any scope for every database, 403 with one for a single database', async () => {
    const none = await fetch(`${s.url}/metrics`);
    assert.equal(none.status, 401);
    const refusal = (await none.json()) as Envelope;
    assert.equal(refusal.errors[0]!.code, 10000);
    assert.doesNotMatch(JSON.stringify(refusal), /dione_requests_total/);
    assert.equal((await fetch(`${s.url}/metrics`, { headers: { authorization: 'Bearer dione_nope' } })).status, 401);
    await s.createDatabase('trust-metrics');
    for (const token of [s.tokenFor('read'), s.token]) {
      const reply = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(reply.status, 200);
      assert.match(await reply.text(), /dione_requests_total/);
    }
    const narrow = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${s.tokenFor('read', 'trust-metrics')}` } });
    assert.equal(narrow.status, 403);
    assert.doesNotMatch(await narrow.text(), /dione_requests_total/);
  });

  test('--dev serves /metrics without a token, as every other route', async (t) => {
    const dev = await startTestServer({ allowUnauthenticated: true });
    t.after(() => dev.close());
    assert.equal((await fetch(`${dev.url}/metrics`)).status, 200);
    assert.equal((await fetch(dev.api)).status, 200);
  });
});
