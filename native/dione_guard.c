/*
** dione_guard: a loadable SQLite extension that gives a better-sqlite3 connection the
** rules Cloudflare D1 applies to user SQL: D1's runtime limits, an authorizer with D1's
** allowlists (functions, PRAGMAs, virtual-table modules, reserved _cf_ names), defensive
** mode, D1's SQL dialect (double-quoted string literals, see d1_dialect), and the gates that make
** SQLite itself the authority on what a request may do:
**
**   - a read mode: while it is on, the authorizer refuses every action that writes or changes
**     connection state (so a statement prepared in it cannot write);
**   - a commit hook that refuses every write commit Dione did not seal: a transaction commits
**     only after dione_seal() has numbered it, so nothing commits outside the logged write path;
**   - at sealing, schema objects in the temp database and new objects with reserved names
**     (renames included, which the authorizer cannot see) are refused.
**
** Helper functions for Dione (better-sqlite3 exposes none of this). Each takes as its first
** argument the token that dione_claim() hands out once, right after loading; without it they
** refuse, so user SQL can call none of them to any effect:
**
**   dione_claim()                 -> the token, once; NULL afterwards
**   dione_prepare_error(t, sql)   -> NULL when sql prepares, else "<offset>|<extended code>|<message>"
**   dione_used_bytes(t)           -> (page_count - freelist_count) * page_size, D1's size_after
**   dione_commit_sequence(t)      -> the commit sequence (database header)
**   dione_seal(t)                 -> in a write transaction: adds one to the sequence, returns it and
**                                    lets the next commit through; NULL when the transaction has not written
**   dione_read_mode(t, on)        -> turns read mode on/off; turning it off returns 'write' when a
**                                    prepare in read mode was refused because it would write
**   dione_check(t)                -> the seal's schema rules for one request of a group (refuses, or
**                                    returns nonzero while deferred foreign key violations are unresolved)
**   dione_checkpoint(t)           -> see below
**   dione_keep_wal(t)             -> closing the connection will leave the WAL as it is (no checkpoint)
**   dione_persist_wal(t)          -> the last connection's close keeps the -wal and -shm files (the WAL
**                                    emptied when journal_size_limit >= 0): reopening creates no files
**   dione_deadline(t, ms)         -> ms > 0: from ms milliseconds from now until disarmed, SQLite interrupts
**                                    this connection's statements; 0: disarms, returning 1 when it had fired
**   dione_release(t)              -> finalizes the cached statements (call before closing)
**
** The PRAGMAs these helpers run internally bypass the authorizer through a flag only C code sets.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <dlfcn.h>
#include <pthread.h>
#include <time.h>

/* The file control of Dione's SQLite that advances the commit sequence (scripts/sqlite-guard-calls.mjs). */
#define NEXT_SEQUENCE_OP 1000001

#define N_INTERNAL 8
enum { Q_PAGE_COUNT, Q_FREELIST, Q_PAGE_SIZE, Q_USER_VERSION, Q_APPLICATION_ID, Q_SCHEMA_VERSION, Q_RESERVED, Q_TEMP_OBJECTS };

typedef struct GuardState {
  int trusted;
  /* Internal statements (see INTERNAL_SQL): prepared once, finalized by dione_release(). */
  sqlite3_stmt *internal[N_INTERNAL];
  /* The holder of this token (Dione, which claims it once right after loading) may use the helpers. */
  sqlite3_int64 token;
  int claimed;
  /* Read mode, and whether a prepare in it was refused for writing. */
  int read_mode;
  int refused_write;
  /* Set by dione_seal(); the commit hook lets one write commit through and clears it. */
  int sealed;
  /* The schema version last checked for reserved names, and how many reserved objects it had. */
  sqlite3_int64 checked_schema;
  sqlite3_int64 reserved_objects;
  /* The page size dione_used_bytes() last read, and the schema version it read it at (0: none). */
  sqlite3_int64 page_size;
  sqlite3_int64 page_size_schema;
  /* The first error an internal statement met since the helper started (a deadline's interrupt). */
  int internal_error;
  /* The deadline (see dione_deadline), and this connection's place on the watch list while armed. */
  sqlite3 *db;
  sqlite3_int64 deadline;
  int watched;
  int fired;
  struct GuardState *watch_prev, *watch_next;
} GuardState;

static const char *const INTERNAL_SQL[N_INTERNAL] = {
  "PRAGMA main.page_count", "PRAGMA main.freelist_count", "PRAGMA main.page_size",
  "PRAGMA main.user_version", "PRAGMA main.application_id", "PRAGMA main.schema_version",
  "SELECT count(*) FROM main.sqlite_schema WHERE name GLOB '_cf_*' OR tbl_name GLOB '_cf_*'",
  "SELECT count(*) FROM temp.sqlite_schema",
};

static const char *const ALLOWED_FUNCTIONS[] = {
  /* core */
  "abs", "changes", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "ifnull",
  "iif", "instr", "last_insert_rowid", "length", "like", "likelihood", "likely", "load_extension",
  "lower", "ltrim", "max", "min", "nullif", "octet_length", "printf", "quote", "random",
  "randomblob", "replace", "round", "rtrim", "sign", "substr", "substring",
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
  /* Dione's own helpers: without the token they refuse (see the top of this file) */
  "dione_used_bytes", "dione_prepare_error", "dione_release", "dione_commit_sequence",
  "dione_claim", "dione_checkpoint", "dione_seal", "dione_read_mode", "dione_check", "dione_keep_wal",
  "dione_persist_wal", "dione_deadline", "dione_settle_schema", "dione_workerd_metadata",
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

/* A boolean PRAGMA's value as workerd's authorizer takes it: quotes aside, it begins with one of
** these, case aside ("1.5", "normal" and "0x10" pass; SQLite then reads them its own way). */
static int is_boolean_value(const char *v) {
  static const char *const B[] = { "true", "false", "yes", "no", "on", "off", "1", "0", 0 };
  if (!v) return 1;
  size_t n = strlen(v);
  if ((v[0] == '\'' || v[0] == '"') && n >= 2 && v[n - 1] == v[0]) { v++; n -= 2; }
  for (int i = 0; B[i]; i++) {
    size_t k = strlen(B[i]);
    if (n >= k && sqlite3_strnicmp(v, B[i], (int)k) == 0) return 1;
  }
  return 0;
}

/* Whether `name` is one of `list`, exactly as written: D1 matches PRAGMA names case-sensitively. */
static int in_exact_list(const char *const *list, const char *name) {
  if (!name) return 0;
  for (int i = 0; list[i]; i++) if (strcmp(list[i], name) == 0) return 1;
  return 0;
}

/* Whether workerd reads the value as a 32-bit integer (its rule for PRAGMA optimize): strtoll in
** base 16 after an optional minus and 0x, else in base 10, the whole text, within range. */
static int is_int32(const char *v) {
  if (!v || !*v) return 0;
  const char *digits = *v == '-' ? v + 1 : v;
  int hex = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, hex ? 16 : 10);
  return end != v && *end == 0 && errno != ERANGE && n >= INT32_MIN && n <= INT32_MAX;
}

static int pragma_allowed(const char *name, const char *arg) {
  static const char *const BOOLEANS[] = { "case_sensitive_like", "foreign_keys", "defer_foreign_keys",
    "ignore_check_constraints", "legacy_alter_table", "recursive_triggers", "reverse_unordered_selects", 0 };
  static const char *const NEED_OBJECT[] = { "foreign_key_list", "index_info", "index_list", "index_xinfo", 0 };
  if (!name) return 0;
  if (strcmp(name, "table_list") == 0) return 1;
  if (strcmp(name, "table_info") == 0 || strcmp(name, "table_xinfo") == 0) return arg != 0 && !reserved(arg);
  if (strcmp(name, "data_version") == 0) return arg == 0;
  if (in_exact_list(BOOLEANS, name)) return is_boolean_value(arg);
  if (in_exact_list(NEED_OBJECT, name)) return arg != 0 && !reserved(arg);
  if (strcmp(name, "foreign_key_check") == 0) return !reserved(arg);
  if (strcmp(name, "quick_check") == 0) return !reserved(arg);
  if (strcmp(name, "optimize") == 0) return arg == 0 || is_int32(arg);
  return 0;
}

/* Whether a PRAGMA changes the database or the connection (the boolean PRAGMAs apply their
** value while the statement is being prepared, so refusing the prepare is what stops them). */
static int pragma_changes_state(const char *name, const char *arg) {
  static const char *const OBJECT_ARGUMENT[] = { "table_list", "table_info", "table_xinfo", "index_info", "index_list",
    "index_xinfo", "foreign_key_list", "foreign_key_check", "quick_check", 0 };
  if (!name || sqlite3_stricmp(name, "optimize") == 0) return 1;
  return arg != 0 && !in_list(OBJECT_ARGUMENT, name);
}

/* Whether an action writes, or changes the connection's state; what read mode refuses. */
static int action_writes(int action, const char *a1, const char *a2) {
  switch (action) {
    case SQLITE_SELECT: case SQLITE_READ: case SQLITE_FUNCTION: case SQLITE_RECURSIVE:
      return 0;
    case SQLITE_PRAGMA:
      return pragma_changes_state(a1, a2);
    default:
      return 1;
  }
}

static int is_temp(const char *db) { return db && sqlite3_stricmp(db, "temp") == 0; }

/* D1's rules for user SQL. */
static int d1_rules(int action, const char *a1, const char *a2, const char *db) {
  switch (action) {
    case SQLITE_CREATE_TEMP_INDEX: case SQLITE_CREATE_TEMP_TABLE: case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW: case SQLITE_DROP_TEMP_INDEX: case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER: case SQLITE_DROP_TEMP_VIEW: case SQLITE_ATTACH: case SQLITE_DETACH:
      return SQLITE_DENY;
    case SQLITE_CREATE_INDEX: case SQLITE_DROP_INDEX: case SQLITE_CREATE_TRIGGER: case SQLITE_DROP_TRIGGER:
      /* A qualified name (CREATE TABLE temp.x) reaches here with the temp database; a trigger
      ** named temp.x on a main table does not, and is refused when its transaction is sealed. */
      return is_temp(db) || reserved(a1) || reserved(a2) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_CREATE_TABLE: case SQLITE_DROP_TABLE: case SQLITE_CREATE_VIEW: case SQLITE_DROP_VIEW: case SQLITE_REINDEX:
      return is_temp(db) || reserved(a1) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_INSERT: case SQLITE_DELETE: case SQLITE_UPDATE:
      /* ALTER TABLE RENAME rewrites sqlite_temp_master too (it holds nothing: temp objects never commit). */
      if (is_temp(db) && !(a1 && sqlite3_stricmp(a1, "sqlite_temp_master") == 0)) return SQLITE_DENY;
      return reserved(a1) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_ANALYZE:
      if (is_temp(db)) return SQLITE_DENY;
      /* As in D1, ANALYZE takes statistics of reserved tables too (it only writes sqlite_stat1). */
      return SQLITE_OK;
    case SQLITE_ALTER_TABLE:
      /* The new name of a RENAME is not shown here: the seal refuses new reserved names. */
      return is_temp(a1) || reserved(a2) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_READ:
      if (reserved(a1)) return SQLITE_DENY;
      if (a1 && sqlite3_stricmp(a1, "dbstat") == 0) return SQLITE_DENY;
      return SQLITE_OK;
    case SQLITE_CREATE_VTABLE:
      return is_temp(db) || reserved(a1) || !in_list(ALLOWED_MODULES, a2) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_DROP_VTABLE:
      return is_temp(db) || reserved(a1) ? SQLITE_DENY : SQLITE_OK;
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

static int authorize(void *p, int action, const char *a1, const char *a2, const char *db, const char *trigger) {
  GuardState *st = (GuardState *)p;
  (void)trigger;
  if (st->trusted) return SQLITE_OK;
  int rc = d1_rules(action, a1, a2, db);
  if (rc != SQLITE_OK) return rc;
  if (st->read_mode && action_writes(action, a1, a2)) {
    st->refused_write = 1;
    return SQLITE_DENY;
  }
  return SQLITE_OK;
}

/* Lets a write transaction commit only once dione_seal() has numbered it. */
static int commit_hook(void *p) {
  GuardState *st = (GuardState *)p;
  if (!st->sealed) return 1;
  st->sealed = 0;
  return 0;
}

static void rollback_hook(void *p) { ((GuardState *)p)->sealed = 0; }

/* The helpers answer only the holder of the token (argument 0). */
static int token_ok(sqlite3_context *ctx, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  if (st->claimed && sqlite3_value_type(argv[0]) == SQLITE_INTEGER && sqlite3_value_int64(argv[0]) == st->token) return 1;
  sqlite3_result_error(ctx, "not authorized", -1);
  sqlite3_result_error_code(ctx, SQLITE_AUTH);
  return 0;
}

static sqlite3_int64 internal_int(GuardState *st, sqlite3 *db, int i) {
  sqlite3_int64 v = 0;
  int was = st->trusted;
  st->trusted = 1;
  int rc = st->internal[i] ? SQLITE_OK : sqlite3_prepare_v3(db, INTERNAL_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &st->internal[i], 0);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st->internal[i]);
    if (rc == SQLITE_ROW) v = sqlite3_column_int64(st->internal[i], 0);
    sqlite3_reset(st->internal[i]);
  }
  if (rc != SQLITE_ROW && st->internal_error == SQLITE_OK) st->internal_error = rc == SQLITE_DONE ? SQLITE_ERROR : rc;
  st->trusted = was;
  return v;
}

/*
** A helper whose internal statements failed (a deadline interrupts them too) fails with that error
** rather than answering with a value read as 0. Returns 1 when it did.
*/
static int internal_failed(sqlite3_context *ctx, GuardState *st) {
  int rc = st->internal_error;
  if (rc == SQLITE_OK) return 0;
  st->internal_error = SQLITE_OK;
  sqlite3_result_error(ctx, sqlite3_errstr(rc), -1);
  sqlite3_result_error_code(ctx, rc);
  return 1;
}

static void prepare_error(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  const char *sql = (const char *)sqlite3_value_text(argv[1]);
  int n = sqlite3_value_bytes(argv[1]);
  sqlite3_stmt *stmt = 0;
  if (!sql) { sqlite3_result_null(ctx); return; }
  int rc = sqlite3_prepare_v2(db, sql, n, &stmt, 0);
  if (rc == SQLITE_OK) { sqlite3_finalize(stmt); sqlite3_result_null(ctx); return; }
  char *out = sqlite3_mprintf("%d|%d|%s", sqlite3_error_offset(db), sqlite3_extended_errcode(db), sqlite3_errmsg(db));
  sqlite3_result_text(ctx, out, -1, sqlite3_free);
}

/* Finalizes the cached statements; call before closing the connection (an open statement keeps
** sqlite3_close() from closing it). */
static void release(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  for (int i = 0; i < N_INTERNAL; i++) { sqlite3_finalize(st->internal[i]); st->internal[i] = 0; }
  sqlite3_result_null(ctx);
}

/* Returns the token on its first call, NULL afterwards; notes the reserved objects that exist. */
static void claim(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  (void)argc; (void)argv;
  if (st->claimed) { sqlite3_result_null(ctx); return; }
  st->claimed = 1;
  st->checked_schema = internal_int(st, db, Q_SCHEMA_VERSION);
  st->reserved_objects = internal_int(st, db, Q_RESERVED);
  sqlite3_result_int64(ctx, st->token);
}

/*
** The database's commit sequence lives in the database header, in the two 32-bit fields D1 never
** lets user SQL read or write (PRAGMA user_version holds the low half, application_id the high
** half): it commits or rolls back with the data, every connection sees the same value, and it adds
** no table to the user's schema.
*/
static sqlite3_uint64 read_sequence(GuardState *st, sqlite3 *db) {
  sqlite3_uint64 low = (sqlite3_uint64)(unsigned int)internal_int(st, db, Q_USER_VERSION);
  sqlite3_uint64 high = (sqlite3_uint64)(unsigned int)internal_int(st, db, Q_APPLICATION_ID);
  return (high << 32) | low;
}

static void commit_sequence(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  st->internal_error = SQLITE_OK;
  sqlite3_uint64 value = read_sequence(st, sqlite3_context_db_handle(ctx));
  if (internal_failed(ctx, st)) return;
  sqlite3_result_int64(ctx, (sqlite3_int64)value);
}

static void refuse(sqlite3_context *ctx, const char *message, int code) {
  sqlite3_result_error(ctx, message, -1);
  sqlite3_result_error_code(ctx, code);
}

/*
** The schema rules the authorizer cannot apply: no object in the temp schema (a trigger named temp.x
** on a main table reaches the authorizer as a main trigger), and no more objects with reserved
** names than the database had (the new name of a RENAME is never shown to the authorizer). With
** `settle`, the schema seen becomes the new reference.
*/
static int schema_allowed(GuardState *st, sqlite3 *db, int settle) {
  if (internal_int(st, db, Q_TEMP_OBJECTS) > 0) return 0;
  sqlite3_int64 schema = internal_int(st, db, Q_SCHEMA_VERSION);
  if (schema == st->checked_schema) return 1;
  sqlite3_int64 reserved_now = internal_int(st, db, Q_RESERVED);
  if (reserved_now > st->reserved_objects) return 0;
  if (settle && st->internal_error == SQLITE_OK) {
    st->checked_schema = schema;
    st->reserved_objects = reserved_now;
  }
  return 1;
}

/*
** dione_settle_schema(t), at the start of a transaction that follows other connections' commits:
** the schema they committed is the new reference (another program on the same file, such as
** workerd creating its _cf_METADATA, may add reserved objects; only this connection's own new ones
** are refused).
*/
static void settle_schema(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  st->internal_error = SQLITE_OK;
  sqlite3_int64 schema = internal_int(st, db, Q_SCHEMA_VERSION);
  sqlite3_int64 reserved_now = schema == st->checked_schema ? st->reserved_objects : internal_int(st, db, Q_RESERVED);
  if (internal_failed(ctx, st)) return;
  st->checked_schema = schema;
  st->reserved_objects = reserved_now;
  sqlite3_result_null(ctx);
}

/*
** dione_check(t): what dione_seal() will refuse, asked of one request of a group before the next
** runs, so each request answers for itself: refuses the schema rules, else returns nonzero while
** deferred foreign key violations are unresolved.
*/
static void check(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  int current = 0, highest = 0;
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  st->internal_error = SQLITE_OK;
  int allowed = schema_allowed(st, db, 0);
  if (internal_failed(ctx, st)) return;
  if (!allowed) { refuse(ctx, "not authorized", SQLITE_AUTH); return; }
  sqlite3_db_status(db, SQLITE_DBSTATUS_DEFERRED_FKS, &current, &highest, 0);
  sqlite3_result_int(ctx, current);
}

/*
** dione_seal(t), the last step of every transaction before COMMIT. SQLite, not the caller, says
** whether the transaction wrote. If it did: refuses temp schema objects and new reserved names,
** adds one to the commit sequence, and lets the commit through. Otherwise NULL.
*/
static void seal(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  if (sqlite3_txn_state(db, "main") != SQLITE_TXN_WRITE && sqlite3_txn_state(db, "temp") != SQLITE_TXN_WRITE) {
    sqlite3_result_null(ctx);
    return;
  }
  st->internal_error = SQLITE_OK;
  int allowed = schema_allowed(st, db, 1);
  if (internal_failed(ctx, st)) return;
  if (!allowed) { refuse(ctx, "not authorized", SQLITE_AUTH); return; }
  sqlite3_uint64 value = 0;
  /* Dione's SQLite advances the sequence in one call (scripts/sqlite-guard-calls.mjs); another
  ** SQLite answers SQLITE_NOTFOUND, and a transaction that wrote only temp SQLITE_MISUSE. */
  int rc = sqlite3_file_control(db, "main", NEXT_SEQUENCE_OP, &value);
  if (rc == SQLITE_OK) {
    st->sealed = 1;
    sqlite3_result_int64(ctx, (sqlite3_int64)value);
    return;
  }
  if (rc != SQLITE_NOTFOUND && rc != SQLITE_MISUSE) { refuse(ctx, sqlite3_errstr(rc), rc); return; }
  value = read_sequence(st, db) + 1;
  sqlite3_uint64 high = (sqlite3_uint64)(unsigned int)internal_int(st, db, Q_APPLICATION_ID);
  if (internal_failed(ctx, st)) return;
  int was = st->trusted;
  st->trusted = 1;
  char *sql = sqlite3_mprintf("PRAGMA main.user_version = %d", (int)(unsigned int)(value & 0xffffffffu));
  rc = sqlite3_exec(db, sql, 0, 0, 0);
  sqlite3_free(sql);
  if (rc == SQLITE_OK && (value >> 32) != high) {
    sql = sqlite3_mprintf("PRAGMA main.application_id = %d", (int)(unsigned int)(value >> 32));
    rc = sqlite3_exec(db, sql, 0, 0, 0);
    sqlite3_free(sql);
  }
  st->trusted = was;
  if (rc != SQLITE_OK) { refuse(ctx, sqlite3_errmsg(db), sqlite3_extended_errcode(db)); return; }
  st->sealed = 1;
  sqlite3_result_int64(ctx, (sqlite3_int64)value);
}

/*
** dione_workerd_metadata(t), inside a write transaction: when the database has no _cf_METADATA
** table, creates it as workerd has it in every D1 database (its Durable Object bookkeeping, with the
** row of its local bookmark), takes it as part of the reference schema, and returns 1; else 0.
** D1's row counts include it: scans of sqlite_schema pass its row, ALTER TABLE rewrites, integrity
** checks and ANALYZE visit it.
*/
static void workerd_metadata(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  if (sqlite3_table_column_metadata(db, "main", "_cf_METADATA", 0, 0, 0, 0, 0, 0) == SQLITE_OK) {
    sqlite3_result_int(ctx, 0);
    return;
  }
  int was = st->trusted;
  st->trusted = 1;
  int rc = sqlite3_exec(db,
    /* Its text as workerd's D1 writes it (sqlite_schema holds it; tools that read the schema see it). */
    "CREATE TABLE main._cf_METADATA (\n        key INTEGER PRIMARY KEY,\n        value BLOB\n      );"
    "INSERT INTO main._cf_METADATA VALUES (2, 0)", 0, 0, 0);
  st->trusted = was;
  if (rc != SQLITE_OK) { refuse(ctx, sqlite3_errmsg(db), sqlite3_extended_errcode(db)); return; }
  st->internal_error = SQLITE_OK;
  sqlite3_int64 schema = internal_int(st, db, Q_SCHEMA_VERSION);
  sqlite3_int64 reserved_now = internal_int(st, db, Q_RESERVED);
  if (internal_failed(ctx, st)) return;
  if (reserved_now == st->reserved_objects + 1) {
    st->checked_schema = schema;
    st->reserved_objects = reserved_now;
  }
  sqlite3_result_int(ctx, 1);
}

static void read_mode(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  int refused = st->refused_write;
  st->read_mode = sqlite3_value_int(argv[1]) != 0;
  st->refused_write = 0;
  if (!st->read_mode && refused) sqlite3_result_text(ctx, "write", -1, SQLITE_STATIC);
  else sqlite3_result_null(ctx);
}

static void keep_wal(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  sqlite3_db_config(sqlite3_context_db_handle(ctx), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
  sqlite3_result_null(ctx);
}

static void persist_wal(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  int on = 1;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  int rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
  if (rc == SQLITE_OK) sqlite3_result_null(ctx);
  else sqlite3_result_error(ctx, "the WAL cannot be kept on close", -1);
}

/*
** dione_checkpoint(t): moves the WAL into the database file, so the next writer starts the
** WAL over from its beginning (the owner of a write log checkpoints only after capturing the WAL;
** user SQL cannot). RESTART, not TRUNCATE: the WAL file keeps its size, and writing over allocated
** blocks syncs faster than growing a file again. 0 when complete, 1 when a reader kept it from
** completing.
*/
static void checkpoint(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_RESTART, 0, 0);
  if (rc == SQLITE_OK || rc == SQLITE_BUSY) sqlite3_result_int(ctx, rc == SQLITE_BUSY);
  else sqlite3_result_error(ctx, sqlite3_errmsg(db), -1);
}

static void used_bytes(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  st->internal_error = SQLITE_OK;
  sqlite3_int64 pages = internal_int(st, db, Q_PAGE_COUNT);
  sqlite3_int64 free_pages = internal_int(st, db, Q_FREELIST);
  /*
  ** PRAGMA page_size is prepared anew every time it runs (its value is fixed when prepared), which
  ** cost more than the rest of this function. The page size changes only with a VACUUM, which moves
  ** the schema version, or before a database has its first page.
  */
  sqlite3_int64 schema = internal_int(st, db, Q_SCHEMA_VERSION);
  if (st->page_size == 0 || schema != st->page_size_schema || pages < 1) {
    st->page_size = internal_int(st, db, Q_PAGE_SIZE);
    st->page_size_schema = schema;
  }
  sqlite3_int64 page_size = st->page_size;
  if (internal_failed(ctx, st)) {
    st->page_size = 0;
    return;
  }
  if (pages < 1) pages = 1; /* a database always has its header page, even before the first write */
  sqlite3_result_int64(ctx, (pages - free_pages) * page_size);
}

/*
** Deadlines. better-sqlite3 is built without the progress callback, so a runaway statement is
** stopped from outside: one watchdog thread per process sleeps until the earliest armed deadline
** and calls sqlite3_interrupt() on each connection past its own. SQLite clears the interrupt flag
** whenever a statement or a prepare starts while no other statement runs, so a connection past its
** deadline is interrupted again every INTERRUPT_REPEAT_NS until it is disarmed. The watch list is
** only touched under watch_lock, and a closing connection leaves it (destroy_state) before its
** memory is freed, so the watchdog never interrupts a closed connection.
*/
#define INTERRUPT_REPEAT_NS 2000000LL
#define NO_DEADLINE 0x7fffffffffffffffLL

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_wake;
static GuardState *watch_list;
static int watchdog_running;
/* When the watchdog wakes next (NO_DEADLINE: only when signalled); arming earlier signals it. */
static sqlite3_int64 watchdog_wakes = NO_DEADLINE;

static sqlite3_int64 now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (sqlite3_int64)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Waits on watch_wake (watch_lock held) until signalled or until `at` on the monotonic clock. */
static void wait_until(sqlite3_int64 at) {
  if (at == NO_DEADLINE) { pthread_cond_wait(&watch_wake, &watch_lock); return; }
#ifdef __APPLE__
  /* No pthread_condattr_setclock on macOS: wait relative to now. */
  sqlite3_int64 left = at - now_ns();
  if (left <= 0) return;
  struct timespec rel = { (time_t)(left / 1000000000LL), (long)(left % 1000000000LL) };
  pthread_cond_timedwait_relative_np(&watch_wake, &watch_lock, &rel);
#else
  struct timespec abs = { (time_t)(at / 1000000000LL), (long)(at % 1000000000LL) };
  pthread_cond_timedwait(&watch_wake, &watch_lock, &abs);
#endif
}

static void *watchdog(void *arg) {
  (void)arg;
  pthread_mutex_lock(&watch_lock);
  for (;;) {
    sqlite3_int64 now = now_ns(), next = NO_DEADLINE;
    for (GuardState *st = watch_list; st; st = st->watch_next) {
      sqlite3_int64 at = st->deadline;
      if (at <= now) {
        sqlite3_interrupt(st->db);
        st->fired = 1;
        at = now + INTERRUPT_REPEAT_NS;
      }
      if (at < next) next = at;
    }
    watchdog_wakes = next;
    wait_until(next);
  }
  return 0;
}

/*
** Starts the watchdog on first use (watch_lock held). 0 when the thread cannot be started. SQLite
** unloads an extension when the connection that loaded it closes; the thread's code and the
** watch list must outlive every connection, so the library is pinned first.
*/
static int start_watchdog(void) {
  if (watchdog_running) return 1;
  Dl_info self;
  if (!dladdr((void *)watchdog, &self) || !self.dli_fname || !dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE)) return 0;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
#ifndef __APPLE__
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
  int rc = pthread_cond_init(&watch_wake, &attr);
  pthread_condattr_destroy(&attr);
  if (rc != 0) return 0;
  pthread_t thread;
  pthread_attr_t thread_attr;
  pthread_attr_init(&thread_attr);
  pthread_attr_setdetachstate(&thread_attr, PTHREAD_CREATE_DETACHED);
  rc = pthread_create(&thread, &thread_attr, watchdog, 0);
  pthread_attr_destroy(&thread_attr);
  if (rc != 0) { pthread_cond_destroy(&watch_wake); return 0; }
  watchdog_running = 1;
  return 1;
}

/* Takes the connection off the watch list (watch_lock held); whether its deadline had fired. */
static int unwatch(GuardState *st) {
  int fired = st->fired;
  if (st->watched) {
    if (st->watch_prev) st->watch_prev->watch_next = st->watch_next;
    else watch_list = st->watch_next;
    if (st->watch_next) st->watch_next->watch_prev = st->watch_prev;
    st->watch_prev = st->watch_next = 0;
    st->watched = 0;
  }
  st->fired = 0;
  return fired;
}

static void deadline(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  GuardState *st = (GuardState *)sqlite3_user_data(ctx);
  (void)argc;
  if (!token_ok(ctx, argv)) return;
  sqlite3_int64 ms = sqlite3_value_int64(argv[1]);
  pthread_mutex_lock(&watch_lock);
  if (ms <= 0) {
    int fired = unwatch(st);
    pthread_mutex_unlock(&watch_lock);
    sqlite3_result_int(ctx, fired);
    return;
  }
  if (!start_watchdog()) {
    pthread_mutex_unlock(&watch_lock);
    refuse(ctx, "dione: cannot start the deadline watchdog thread", SQLITE_ERROR);
    return;
  }
  if (ms > 1000000000LL) ms = 1000000000LL;
  st->deadline = now_ns() + ms * 1000000LL;
  st->fired = 0;
  if (!st->watched) {
    st->watch_prev = 0;
    st->watch_next = watch_list;
    if (watch_list) watch_list->watch_prev = st;
    watch_list = st;
    st->watched = 1;
  }
  if (st->deadline < watchdog_wakes) {
    watchdog_wakes = st->deadline;
    pthread_cond_signal(&watch_wake);
  }
  pthread_mutex_unlock(&watch_lock);
  sqlite3_result_int(ctx, 0);
}

/* The state's destructor, when the connection closes: off the watch list first, then freed. */
static void destroy_state(void *p) {
  pthread_mutex_lock(&watch_lock);
  unwatch((GuardState *)p);
  pthread_mutex_unlock(&watch_lock);
  sqlite3_free(p);
}

/*
** The table-valued form of PRAGMA optimize (SELECT * FROM pragma_optimize) would run ANALYZE from
** inside a read. A module of the same name shadows SQLite's own; connecting to it is refused.
*/
static int refused_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **vtab, char **err) {
  (void)db; (void)aux; (void)argc; (void)argv; (void)vtab;
  *err = sqlite3_mprintf("not authorized");
  return SQLITE_ERROR;
}

static const sqlite3_module REFUSED_MODULE = { 0, 0, refused_connect };

/* The SQL D1's SQLite accepts beyond better-sqlite3's build: double-quoted string literals ("x"
** naming no column is the string 'x'), in DML and DDL alike. workerd builds SQLite with the
** default SQLITE_DQS=3; better-sqlite3 with SQLITE_DQS=0. A schema written with them (a view, a
** trigger, a CHECK) only works on connections that accept them. */
static void d1_dialect(sqlite3 *db) {
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 1, (int *)0);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 1, (int *)0);
}

/* Entry point "sqlite3_dionedialect_init": the dialect alone, for Dione's own connections to a
** copy of a database (a VACUUM rebuilds every view and trigger), which need none of the rules. */
#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_dionedialect_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  (void)err;
  d1_dialect(db);
  return SQLITE_OK;
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
  st->db = db;
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
  /* Views and triggers may use FTS5's MATCH, its auxiliary functions and the pragma_* table
  ** functions, as in D1 (workerd keeps SQLite's default). What they may do is still the
  ** authorizer's to say, as for any statement; Dione's own functions are SQLITE_DIRECTONLY. */
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 1, (int *)0);
  d1_dialect(db);
  sqlite3_set_authorizer(db, authorize, st);
  sqlite3_commit_hook(db, commit_hook, st);
  sqlite3_rollback_hook(db, rollback_hook, st);
  static const struct { const char *name; int args; void (*fn)(sqlite3_context *, int, sqlite3_value **); } FUNCTIONS[] = {
    { "dione_claim", 0, claim }, { "dione_prepare_error", 2, prepare_error }, { "dione_used_bytes", 1, used_bytes },
    { "dione_release", 1, release }, { "dione_checkpoint", 1, checkpoint },
    { "dione_commit_sequence", 1, commit_sequence }, { "dione_seal", 1, seal }, { "dione_read_mode", 2, read_mode },
    { "dione_check", 1, check }, { "dione_keep_wal", 1, keep_wal }, { "dione_deadline", 2, deadline },
    { "dione_persist_wal", 1, persist_wal },
    { "dione_settle_schema", 1, settle_schema }, { "dione_workerd_metadata", 1, workerd_metadata },
  };
  int rc = sqlite3_create_function_v2(db, "dione_claim", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY, st, claim, 0, 0, destroy_state);
  for (size_t i = 1; rc == SQLITE_OK && i < sizeof FUNCTIONS / sizeof FUNCTIONS[0]; i++) {
    rc = sqlite3_create_function_v2(db, FUNCTIONS[i].name, FUNCTIONS[i].args, SQLITE_UTF8 | SQLITE_DIRECTONLY, st, FUNCTIONS[i].fn, 0, 0, 0);
  }
  if (rc == SQLITE_OK) rc = sqlite3_create_module_v2(db, "pragma_optimize", &REFUSED_MODULE, 0, 0);
  return rc;
}
