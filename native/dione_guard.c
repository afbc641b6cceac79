/*
** dione_guard: a loadable SQLite extension that gives a better-sqlite3 connection the
** rules Cloudflare D1 applies to user SQL: D1's runtime limits, an authorizer with D1's
** allowlists (functions, PRAGMAs, virtual-table modules, reserved _cf_ names), defensive
** mode, and two helper functions that better-sqlite3 does not expose:
**
**   dione_prepare_error(sql)  -> NULL when sql prepares, else "<offset>|<extended code>|<message>"
**                                (sqlite3_error_offset is not reachable from better-sqlite3)
**   dione_used_bytes()        -> (page_count - freelist_count) * page_size, D1's size_after
**   dione_data_version()      -> SQLite's data version (changes on any connection's commit)
**   dione_commit_sequence(t)  -> the commit sequence (database header); with the token t, adds one first
**   dione_claim()             -> that token, once (Dione claims it right after loading)
**   dione_release()           -> finalizes the cached statements (call before closing)
**
** The page-count PRAGMAs inside dione_used_bytes() run with the authorizer bypassed through a flag
** that only C code sets.
*/
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <ctype.h>

typedef struct GuardState {
  int trusted;
  /* PRAGMA page_count, freelist_count, page_size, user_version, application_id: prepared once,
  ** finalized by dione_release(). */
  sqlite3_stmt *pragmas[5];
  /* Only the holder of this token (Dione, which claims it once right after loading) may bump. */
  sqlite3_int64 token;
  int claimed;
} GuardState;

static const char *const ALLOWED_FUNCTIONS[] = {
  /* core */
  "abs", "changes", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "ifnull",
  "iif", "instr", "last_insert_rowid", "length", "like", "likelihood", "likely", "load_extension",
  "lower", "ltrim", "max", "min", "nullif", "octet_length", "printf", "quote", "random",
  "randomblob", "replace", "round", "rtrim", "sign", "soundex", "substr", "substring",
  "total_changes", "trim", "typeof", "unhex", "unicode", "unlikely", "upper", "zeroblob",
  /* date and time */
  "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff", "current_date",
  "current_time", "current_timestamp",
  /* aggregate */
  "avg", "count", "group_concat", "string_agg", "sum", "total",
  /* window */
  "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
  "first_value", "last_value", "nth_value",
  /* math */
  "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "cos", "cosh", "degrees",
  "exp", "floor", "ln", "log", "log2", "mod", "pi", "pow", "radians", "sin", "sinh", "sqrt", "tan",
  "tanh", "trunc",
  /* json */
  "json", "jsonb", "json_array", "jsonb_array", "json_array_length", "json_extract",
  "jsonb_extract", "->", "->>", "json_insert", "jsonb_insert", "json_object", "jsonb_object",
  "json_patch", "jsonb_patch", "json_remove", "jsonb_remove", "json_replace", "jsonb_replace",
  "json_set", "jsonb_set", "json_type", "json_valid", "json_quote", "json_group_array",
  "jsonb_group_array", "json_group_object", "jsonb_group_object", "json_each", "json_tree",
  /* fts5 and rtree */
  "match", "highlight", "bm25", "snippet", "rtreecheck",
  /* Dione's own helpers (harmless: they read counters or prepare under this same authorizer) */
  "dione_used_bytes", "dione_prepare_error", "dione_release", "dione_data_version", "dione_commit_sequence", "dione_claim", "dione_checkpoint",
  /* used by ALTER TABLE internally */
  "sqlite_rename_column", "sqlite_rename_table", "sqlite_rename_test", "sqlite_drop_column",
  "sqlite_rename_quotefix",
  0
};

static const char *const ALLOWED_MODULES[] = { "fts5", "fts5vocab", "rtree", "rtree_i32", 0 };

static int in_list(const char *const *list, const char *name) {
  if (!name) return 0;
  for (int i = 0; list[i]; i++) if (sqlite3_stricmp(list[i], name) == 0) return 1;
  return 0;
}

/* D1 reserves the _cf_ prefix (case-sensitive, as workerd checks it). */
static int reserved(const char *name) { return name && strncmp(name, "_cf_", 4) == 0; }

static int is_boolean_literal(const char *v) {
  static const char *const B[] = { "true", "false", "yes", "no", "on", "off", "1", "0", 0 };
  if (!v) return 1;
  size_t n = strlen(v);
  char buf[16];
  if ((v[0] == '\'' || v[0] == '"') && n >= 2 && v[n - 1] == v[0]) { v++; n -= 2; }
  if (n >= sizeof buf) return 0;
  memcpy(buf, v, n); buf[n] = 0;
  return in_list(B, buf);
}

static int is_integer(const char *v, int allow_sign) {
  if (!v || !*v) return 0;
  if (allow_sign && (*v == '-' || *v == '+')) v++;
  if (!*v) return 0;
  for (; *v; v++) if (!isdigit((unsigned char)*v)) return 0;
  return 1;
}

static int pragma_allowed(const char *name, const char *arg) {
  static const char *const BOOLEANS[] = { "case_sensitive_like", "foreign_keys", "defer_foreign_keys",
    "ignore_check_constraints", "legacy_alter_table", "recursive_triggers", "reverse_unordered_selects", 0 };
  static const char *const NEED_OBJECT[] = { "foreign_key_list", "index_info", "index_list", "index_xinfo", 0 };
  if (!name) return 0;
  if (sqlite3_stricmp(name, "table_list") == 0) return 1;
  if (sqlite3_stricmp(name, "table_info") == 0 || sqlite3_stricmp(name, "table_xinfo") == 0) return !reserved(arg);
  if (sqlite3_stricmp(name, "data_version") == 0) return arg == 0;
  if (in_list(BOOLEANS, name)) return is_boolean_literal(arg);
  if (in_list(NEED_OBJECT, name)) return arg != 0 && !reserved(arg);
  if (sqlite3_stricmp(name, "foreign_key_check") == 0) return !reserved(arg);
  if (sqlite3_stricmp(name, "quick_check") == 0) return !reserved(arg);
  if (sqlite3_stricmp(name, "optimize") == 0) return arg == 0 || is_integer(arg, 1);
  return 0;
}

static int authorize(void *p, int action, const char *a1, const char *a2, const char *db, const char *trigger) {
  GuardState *st = (GuardState *)p;
  (void)trigger;
  if (st->trusted) return SQLITE_OK;
  switch (action) {
    case SQLITE_CREATE_TEMP_INDEX: case SQLITE_CREATE_TEMP_TABLE: case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW: case SQLITE_DROP_TEMP_INDEX: case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER: case SQLITE_DROP_TEMP_VIEW: case SQLITE_ATTACH: case SQLITE_DETACH:
      return SQLITE_DENY;
    case SQLITE_CREATE_INDEX: case SQLITE_DROP_INDEX: case SQLITE_CREATE_TRIGGER: case SQLITE_DROP_TRIGGER:
      return reserved(a1) || reserved(a2) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_CREATE_TABLE: case SQLITE_DROP_TABLE: case SQLITE_CREATE_VIEW: case SQLITE_DROP_VIEW:
    case SQLITE_INSERT: case SQLITE_DELETE: case SQLITE_UPDATE: case SQLITE_REINDEX:
      return reserved(a1) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_ANALYZE:
      /* A database-wide ANALYZE (or PRAGMA optimize) passes over reserved tables instead of failing. */
      return reserved(a1) ? SQLITE_IGNORE : SQLITE_OK;
    case SQLITE_ALTER_TABLE:
      return reserved(a2) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_READ:
      if (reserved(a1)) return SQLITE_DENY;
      if (a1 && sqlite3_stricmp(a1, "dbstat") == 0) return SQLITE_DENY;
      return SQLITE_OK;
    case SQLITE_CREATE_VTABLE:
      return reserved(a1) || !in_list(ALLOWED_MODULES, a2) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_DROP_VTABLE:
      return reserved(a1) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_FUNCTION:
      return in_list(ALLOWED_FUNCTIONS, a2) ? SQLITE_OK : SQLITE_DENY;
    case SQLITE_PRAGMA:
      if (db && sqlite3_stricmp(db, "main") != 0) return SQLITE_DENY;
      return pragma_allowed(a1, a2) ? SQLITE_OK : SQLITE_DENY;
    default:
      /* SELECT, RECURSIVE, TRANSACTION, SAVEPOINT: user transaction statements are refused
      ** before they reach SQLite, so these come only from Dione itself. */
      return SQLITE_OK;
  }
}

static void prepare_error(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  const char *sql = (const char *)sqlite3_value_text(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  sqlite3_stmt *stmt = 0;
  (void)argc;
  if (!sql) { sqlite3_result_null(ctx); return; }
  int rc = sqlite3_prepare_v2(db, sql, n, &stmt, 0);
  if (rc == SQLITE_OK) { sqlite3_finalize(stmt); sqlite3_result_null(ctx); return; }
  char *out = sqlite3_mprintf("%d|%d|%s", sqlite3_error_offset(db), sqlite3_extended_errcode(db), sqlite3_errmsg(db));
  sqlite3_result_text(ctx, out, -1, sqlite3_free);
}

static sqlite3_int64 pragma_int(GuardState *st, sqlite3 *db, int i) {
  static const char *const SQL[5] = { "PRAGMA main.page_count", "PRAGMA main.freelist_count", "PRAGMA main.page_size",
                                      "PRAGMA main.user_version", "PRAGMA main.application_id" };
  sqlite3_int64 v = 0;
  if (!st->pragmas[i] && sqlite3_prepare_v3(db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &st->pragmas[i], 0) != SQLITE_OK) return 0;
  if (sqlite3_step(st->pragmas[i]) == SQLITE_ROW) v = sqlite3_column_int64(st->pragmas[i], 0);
  sqlite3_reset(st->pragmas[i]);
  return v;
}

/* Finalizes the cached statements; call before closing the connection (an open statement keeps
** sqlite3_close() from closing it). */
static void release(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  (void)argc; (void)argv;
  for (int i = 0; i < 5; i++) { sqlite3_finalize(st->pragmas[i]); st->pragmas[i] = 0; }
  sqlite3_result_null(ctx);
}

/* SQLite's data version of the main database: it changes whenever the content changes, through
** this connection or any other (read after a statement has started a read transaction). */
static void data_version(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  unsigned int v = 0;
  (void)argc; (void)argv;
  sqlite3_file_control(sqlite3_context_db_handle(ctx), "main", SQLITE_FCNTL_DATA_VERSION, &v);
  sqlite3_result_int64(ctx, v);
}

/*
** The database's commit sequence lives in the database header, in the two 32-bit fields D1 never
** lets user SQL read or write (PRAGMA user_version holds the low half, application_id the high
** half): it commits or rolls back with the data, every connection sees the same value, and it adds
** no table to the user's schema. dione_commit_sequence(0) reads it; dione_commit_sequence(<token>),
** inside a write transaction, adds one and returns the new value.
*/
/* Returns the bump token on its first call, NULL afterwards. */
static void claim(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  (void)argc; (void)argv;
  if (st->claimed) { sqlite3_result_null(ctx); return; }
  st->claimed = 1;
  sqlite3_result_int64(ctx, st->token);
}

static void commit_sequence(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  int bump = sqlite3_value_type(argv[0]) == SQLITE_INTEGER && sqlite3_value_int64(argv[0]) == st->token && st->claimed;
  int rc = SQLITE_OK;
  (void)argc;
  int was = st->trusted;
  st->trusted = 1;
  sqlite3_uint64 low = (sqlite3_uint64)(unsigned int)pragma_int(st, db, 3);
  sqlite3_uint64 high = (sqlite3_uint64)(unsigned int)pragma_int(st, db, 4);
  sqlite3_uint64 value = (high << 32) | low;
  if (bump) {
    value++;
    char *sql = sqlite3_mprintf("PRAGMA main.user_version = %d", (int)(unsigned int)(value & 0xffffffffu));
    rc = sqlite3_exec(db, sql, 0, 0, 0);
    sqlite3_free(sql);
    if (rc == SQLITE_OK && (value >> 32) != high) {
      sql = sqlite3_mprintf("PRAGMA main.application_id = %d", (int)(unsigned int)(value >> 32));
      rc = sqlite3_exec(db, sql, 0, 0, 0);
      sqlite3_free(sql);
    }
  }
  st->trusted = was;
  if (rc != SQLITE_OK) { sqlite3_result_error(ctx, sqlite3_errmsg(db), -1); return; }
  sqlite3_result_int64(ctx, (sqlite3_int64)value);
}

/*
** dione_checkpoint(<token>): moves the WAL into the database file, so the next writer starts the
** WAL over from its beginning (the owner of a write log checkpoints only after capturing the WAL;
** user SQL cannot). RESTART, not TRUNCATE: the WAL file keeps its size, and writing over allocated
** blocks syncs faster than growing a file again. 0 when complete, 1 when a reader kept it from
** completing.
*/
static void checkpoint(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  (void)argc;
  if (!(sqlite3_value_type(argv[0]) == SQLITE_INTEGER && sqlite3_value_int64(argv[0]) == st->token && st->claimed)) {
    sqlite3_result_error(ctx, "not authorized", -1);
    return;
  }
  int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_RESTART, 0, 0);
  if (rc == SQLITE_OK || rc == SQLITE_BUSY) sqlite3_result_int(ctx, rc == SQLITE_BUSY);
  else sqlite3_result_error(ctx, sqlite3_errmsg(db), -1);
}

static void used_bytes(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  (void)argc; (void)argv;
  int was = st->trusted;
  st->trusted = 1;
  sqlite3_int64 pages = pragma_int(st, db, 0);
  sqlite3_int64 free_pages = pragma_int(st, db, 1);
  sqlite3_int64 page_size = pragma_int(st, db, 2);
  st->trusted = was;
  if (pages < 1) pages = 1; /* a database always has its header page, even before the first write */
  sqlite3_result_int64(ctx, (pages - free_pages) * page_size);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_dioneguard_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  (void)err;
  GuardState *st = sqlite3_malloc(sizeof *st);
  if (!st) return SQLITE_NOMEM;
  memset(st, 0, sizeof *st);
  sqlite3_randomness(sizeof st->token, &st->token);
  st->token &= 0x7fffffffffffffffLL;
  if (st->token == 0) st->token = 1;
  /* D1's limits, as workerd sets them. Bound parameters are checked by Dione's lexer, which
  ** rewrites named and numbered parameters, so SQLite's own variable limit stays wide. */
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 2200000);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 100000);
  sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 100);
  sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 100);
  sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 5);
  sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, 25000);
  sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 127);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 50);
  sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 10);
  sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, 0);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)0);
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)0);
  sqlite3_set_authorizer(db, authorize, st);
  int rc = sqlite3_create_function_v2(db, "dione_prepare_error", 1, SQLITE_UTF8, st, prepare_error, 0, 0, sqlite3_free);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "dione_used_bytes", 0, SQLITE_UTF8, st, used_bytes, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "dione_release", 0, SQLITE_UTF8, st, release, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "dione_claim", 0, SQLITE_UTF8, st, claim, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "dione_data_version", 0, SQLITE_UTF8, st, data_version, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "dione_checkpoint", 1, SQLITE_UTF8, st, checkpoint, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "dione_commit_sequence", 1, SQLITE_UTF8, st, commit_sequence, 0, 0, 0);
  return rc;
}
