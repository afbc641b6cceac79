// Builds Dione's copy of better-sqlite3's native addon: better-sqlite3's own C++ and its own
// SQLite amalgamation, with the row counters of scripts/sqlite-row-counters.mjs, the hashed
// open-file table of scripts/sqlite-inode-hash.mjs, the -shm reset of scripts/sqlite-shm-reset.mjs,
// the cheaper per-commit calls of the guard in scripts/sqlite-guard-calls.mjs,
// the file lock of scripts/addon-file-lock.mjs, the raw rows of scripts/addon-raw-rows.mjs
// and smaller per-connection allocations (CONNECTION_MEMORY_DEFINES), compiled by
// node-gyp with better-sqlite3's own build settings into build/better_sqlite3.node. Dione opens
// every database through it (better-sqlite3's `nativeBinding` option), so rows_read and
// rows_written are counted inside SQLite as D1 counts them. better-sqlite3 itself is untouched.
//
// A stamp next to the addon records what it was built from; a build whose stamp matches is kept.
// DIONE_SQLITE_ADDON=<path of a built addon> copies that one instead of compiling, when its stamp
// (<path>.json) matches: the install tests use it to save the compile in every fresh install.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileLockChanges } from './addon-file-lock.mjs';
import { rawRowChanges } from './addon-raw-rows.mjs';
import { inodeHashChanges } from './sqlite-inode-hash.mjs';
import { guardCallChanges } from './sqlite-guard-calls.mjs';
import { amalgamationChanges, applyChanges, bindingChanges } from './sqlite-row-counters.mjs';
import { shmResetChanges } from './sqlite-shm-reset.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const upstream = path.dirname(require.resolve('better-sqlite3/package.json'));
const output = path.join(root, 'build', 'better_sqlite3.node');
const stampFile = `${output}.json`;
const workDir = path.join(root, 'build', 'sqlite-addon');

export function stampOf() {
  const hash = createHash('sha256');
  hash.update(readFileSync(fileURLToPath(new URL('./sqlite-row-counters.mjs', import.meta.url))));
  hash.update(readFileSync(fileURLToPath(new URL('./sqlite-inode-hash.mjs', import.meta.url))));
  hash.update(readFileSync(fileURLToPath(new URL('./sqlite-shm-reset.mjs', import.meta.url))));
  hash.update(readFileSync(fileURLToPath(new URL('./sqlite-guard-calls.mjs', import.meta.url))));
  hash.update(readFileSync(fileURLToPath(new URL('./addon-file-lock.mjs', import.meta.url))));
  hash.update(readFileSync(fileURLToPath(new URL('./addon-raw-rows.mjs', import.meta.url))));
  hash.update(readFileSync(fileURLToPath(import.meta.url)));
  const { version } = JSON.parse(readFileSync(path.join(upstream, 'package.json'), 'utf8'));
  return {
    betterSqlite3: version,
    modules: process.versions.modules,
    platform: `${process.platform}-${process.arch}`,
    sources: hash.digest('hex').slice(0, 16),
  };
}

const sameStamp = (file, stamp) => {
  try {
    return JSON.stringify(JSON.parse(readFileSync(file, 'utf8'))) === JSON.stringify(stamp);
  } catch {
    return false;
  }
};

/**
 * better-sqlite3's compile options that workerd's SQLite (D1's) does not have, where the difference
 * shows through D1's interface: with STAT4, ANALYZE also creates and fills sqlite_stat4 (D1's
 * rows_written of ANALYZE differs) and the planner reads those samples. Without the others, what
 * D1 lacks is missing here too, with D1's words (checked against miniflare's workerd): soundex(),
 * median() and percentile*(), geopoly_*(), FTS3/FTS4's matchinfo(), offsets() and fts3_tokenizer()
 * are "no such function", the dbstat table "no such table". D1's SQLite also reads Tcl-style
 * parameter names (`$a::b`, `$a(1)`), which better-sqlite3's build leaves out.
 */
const D1_ABSENT_DEFINES = [
  'SQLITE_ENABLE_STAT4',
  'SQLITE_SOUNDEX',
  'SQLITE_ENABLE_PERCENTILE',
  'SQLITE_ENABLE_GEOPOLY',
  'SQLITE_ENABLE_FTS3',
  'SQLITE_ENABLE_FTS3_PARENTHESIS',
  'SQLITE_ENABLE_FTS4',
  'SQLITE_ENABLE_DBSTAT_VTAB',
  'SQLITE_OMIT_TCL_VARIABLE',
];

/** D1's bound on printf()'s width and precision: printf('%200000d', 1) is 100,000 characters long. */
const D1_DEFINES = ['SQLITE_PRINTF_PRECISION_LIMIT=100000'];

/**
 * REALs written as text as D1's SQLite writes them: 15 significant digits. SQLite 3.47 moved to 17
 * (SQLITE_DBCONFIG_FP_DIGITS, default 17), so CAST(0.1 + 0.2 AS TEXT), 0.3 || '', a REAL stored in a
 * TEXT column and json_object('x', 0.1 + 0.2) read 0.30000000000000004 where D1 reads 0.3, and
 * 1e15 || '' read 1000000000000000.0 for D1's 1.0e+15 (checked against miniflare's workerd).
 */
const D1_REAL_TEXT_CHANGES = [
  { what: 'REAL to TEXT with 15 significant digits on every connection', within: 'static int openDatabase(', line: '  db->nFpDigit = 17;', replace: '  db->nFpDigit = 15;' },
  {
    what: 'REAL to TEXT with 15 significant digits where no connection is at hand',
    within: 'static void vdbeMemRenderNum(int sz, char *zBuf, Mem *p){',
    line: '         (p->db ? p->db->nFpDigit : 17), p->u.r);',
    replace: '         (p->db ? p->db->nFpDigit : 15), p->u.r);',
  },
  {
    what: 'JSON writes a REAL with 15 significant digits',
    within: 'static void jsonAppendSqlValue(',
    line: '      jsonPrintf(100, p, "%!0.17g", sqlite3_value_double(pValue));',
    replace: '      jsonPrintf(100, p, "%!0.15g", sqlite3_value_double(pValue));',
  },
  {
    // D1's quote(): 15 digits when they read back as the same REAL, else 20 in exponent form.
    what: 'quote() of a REAL as D1 writes it',
    within: 'SQLITE_PRIVATE void sqlite3QuoteValue(StrAccum *pStr, sqlite3_value *pValue, int bEscape){',
    line: '      sqlite3_str_appendf(pStr, "%!0.17g", sqlite3_value_double(pValue));',
    replace: [
      '      double r1 = sqlite3_value_double(pValue), r2;',
      '      sqlite3_str_appendf(pStr, "%!0.15g", r1);',
      '      if( sqlite3_str_value(pStr) && (sqlite3AtoF(sqlite3_str_value(pStr), &r2)<=0 || r1!=r2) ){',
      '        sqlite3_str_reset(pStr);',
      '        sqlite3_str_appendf(pStr, "%!0.20e", r1);',
      '      }',
    ].join('\n'),
  },
];

/**
 * What D1's SQLite has not: iif() takes exactly three arguments there (3.48 took two or more and
 * added if()); jsonb_each and jsonb_tree are "no such table".
 */
const D1_OLDER_SQL = [
  {
    what: 'iif() of three arguments only',
    within: 'SQLITE_PRIVATE void sqlite3RegisterBuiltinFunctions(void){',
    line: '    INLINE_FUNC(iif,            -4, INLINEFUNC_iif,      0 ),',
    replace: '    INLINE_FUNC(iif,             3, INLINEFUNC_iif,      0 ),',
  },
  {
    what: 'no if()',
    within: 'SQLITE_PRIVATE void sqlite3RegisterBuiltinFunctions(void){',
    line: '    INLINE_FUNC(if,             -4, INLINEFUNC_iif,      0 ),',
    replace: '    /* if(): not in D1\'s SQLite */',
  },
  {
    what: 'no jsonb_each, jsonb_tree',
    within: 'SQLITE_PRIVATE Module *sqlite3JsonVtabRegister(sqlite3 *db, const char *zName){',
    line: '    "json_each", "json_tree", "jsonb_each", "jsonb_tree"',
    replace: '    "json_each", "json_tree"',
  },
];

/**
 * What SQLite allocates for each connection it opens, made smaller: a server keeps thousands of
 * databases open and opens and closes them all the time. Lookaside: 40 slots, not 100 (SQLite's
 * own default where memory is tight; a cached statement's run takes a few). Page cache: 4 pages
 * allocated at the first read, not 20 (further pages are allocated as they are needed). Measured:
 * 393 → 265 KB resident per open database with a history (300 held open, one read each).
 */
const CONNECTION_MEMORY_DEFINES = ['SQLITE_DEFAULT_LOOKASIDE=1200,40', 'SQLITE_DEFAULT_PCACHE_INITSZ=4'];

function withDefines(text, names) {
  const end = text.lastIndexOf('  ],');
  if (end < 0) throw new Error("better-sqlite3's defines.gypi has no list of defines: look at scripts/build-sqlite.mjs again");
  return `${text.slice(0, end)}${names.map((name) => `    '${name}',\n`).join('')}${text.slice(end)}`;
}

function withoutDefines(text, names) {
  let out = text;
  for (const name of names) {
    const line = `    '${name}',\n`;
    if (!out.includes(line)) throw new Error(`better-sqlite3's defines.gypi has no ${name}: look at scripts/build-sqlite.mjs again`);
    out = out.replace(line, '');
  }
  return out;
}

function nodeGyp() {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  const bundled = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return bundled;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    throw new Error('node-gyp was not found (it comes with npm); run this through npm install');
  }
}

/** The folder node-gyp compiles: better-sqlite3's sources with the counters, and one target. */
function prepareSources() {
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  cpSync(path.join(upstream, 'src'), path.join(workDir, 'src'), { recursive: true });
  cpSync(path.join(upstream, 'deps'), path.join(workDir, 'deps'), { recursive: true });
  const defines = path.join(workDir, 'deps', 'defines.gypi');
  writeFileSync(defines, withDefines(withoutDefines(readFileSync(defines, 'utf8'), D1_ABSENT_DEFINES), [...D1_DEFINES, ...CONNECTION_MEMORY_DEFINES]));
  const amalgamation = path.join(workDir, 'deps', 'sqlite3', 'sqlite3.c');
  writeFileSync(amalgamation, applyChanges(readFileSync(amalgamation, 'utf8'), [...amalgamationChanges, ...inodeHashChanges, ...shmResetChanges, ...guardCallChanges, ...D1_REAL_TEXT_CHANGES, ...D1_OLDER_SQL], 'sqlite3.c'));
  const sourceChanges = [...bindingChanges, ...fileLockChanges, ...rawRowChanges];
  for (const file of new Set(sourceChanges.map((change) => change.file))) {
    const target = path.join(workDir, 'src', file);
    const changes = sourceChanges.filter((change) => change.file === file);
    writeFileSync(target, applyChanges(readFileSync(target, 'utf8'), changes, file));
  }
  // better-sqlite3's binding.gyp without its test extension target.
  const gyp = {
    includes: ['deps/common.gypi'],
    targets: [
      {
        target_name: 'better_sqlite3',
        dependencies: ['deps/sqlite3.gyp:sqlite3'],
        sources: ['src/better_sqlite3.cpp'],
        cflags_cc: ['-std=c++20'],
        xcode_settings: { OTHER_CPLUSPLUSFLAGS: ['-std=c++20', '-stdlib=libc++'] },
        msvs_settings: { VCCLCompilerTool: { AdditionalOptions: ['/std:c++20'] } },
        conditions: [['OS=="linux"', { ldflags: ['-Wl,-Bsymbolic', '-Wl,--exclude-libs,ALL'] }]],
      },
    ],
  };
  writeFileSync(path.join(workDir, 'binding.gyp'), JSON.stringify(gyp, null, 2));
  // better-sqlite3's build helpers are CommonJS; Dione's package.json says "module".
  writeFileSync(path.join(workDir, 'package.json'), '{ "type": "commonjs" }\n');
}

function compile() {
  const args = [nodeGyp(), 'rebuild', '--release', '--jobs=max', '--loglevel=warn'];
  // Node's headers: npm passes its nodedir to node-gyp; a Node installed with its headers needs no download.
  const headers = path.join(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(path.join(headers, 'include', 'node', 'node.h'))) {
    args.push(`--nodedir=${headers}`);
  }
  try {
    execFileSync(process.execPath, args, { cwd: workDir, stdio: 'pipe', maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    // The compiler's own words, only when it failed (better-sqlite3's C++ builds with warnings).
    process.stderr.write(error.stdout ?? '');
    process.stderr.write(error.stderr ?? '');
    throw new Error('dione: compiling SQLite with row counters failed (a C/C++ compiler, make and Python are needed, as for better-sqlite3)');
  }
  install(path.join(workDir, 'build', 'Release', 'better_sqlite3.node'));
}

/** Copies the addon into place by rename: a process that has the old one loaded keeps its own copy. */
function install(addon) {
  copyFileSync(addon, `${output}.tmp`);
  renameSync(`${output}.tmp`, output);
}

export function buildSqliteAddon({ force = false } = {}) {
  const stamp = stampOf();
  if (!force && existsSync(output) && sameStamp(stampFile, stamp)) return 'kept';
  mkdirSync(path.dirname(output), { recursive: true });
  const given = process.env.DIONE_SQLITE_ADDON;
  if (given && !force && sameStamp(`${given}.json`, stamp)) {
    install(given);
    writeFileSync(stampFile, JSON.stringify(stamp));
    return 'copied';
  }
  prepareSources();
  compile();
  writeFileSync(stampFile, JSON.stringify(stamp));
  rmSync(workDir, { recursive: true, force: true });
  return 'built';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const result = buildSqliteAddon({ force: process.argv.includes('--force') });
  console.log(`dione: SQLite with row counters ${result} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
