// `dione` as bundlers see it (Next.js with Turbopack or webpack, and others that bundle server
// code): it loads the package's real entry, dist/index.js, with an import() they leave alone, so
// Node loads Dione and better-sqlite3 from this folder at run time. Bundled, better-sqlite3 cannot
// find its native addon (and is not external when the package is a linked folder) and the path of
// Dione's SQLite extension is rewritten. Node itself never runs this file: package.json sends it
// to dist/index.js through the "node-addons" condition, which Node sets and bundlers do not.
const entry = import.meta.url.replace(/\/loader\/dione\.js$/, '/dist/index.js');
if (entry === import.meta.url) throw new Error(`dione: cannot find dist/index.js from ${import.meta.url}`);
const dione = await import(/* webpackIgnore: true */ /* turbopackIgnore: true */ /* @vite-ignore */ entry);

export const { open, history, HistoryError, parseTimestamp, D1Database, D1DatabaseSession, D1PreparedStatement, beginTransaction, withTransaction, connect, nodeFetch } = dione;
