// SQL that tries to get past Dione's rules, shared by the embedded and the server trust tests.

/** Every spelling of a temp schema object; the trigger one is the 'hidden temp trigger' attack. */
export const TEMP_OBJECTS = [
  'CREATE TEMP TABLE x(a)',
  'CREATE TEMPORARY TABLE x(a)',
  'CREATE TEMPORARY VIEW v AS SELECT 1',
  'CREATE TABLE temp.x(a)',
  'CREATE TABLE "temp".x(a)',
  'CREATE TABLE [temp].x(a)',
  'CREATE TABLE `temp`.x(a)',
  'CREATE TABLE TEMP.x(a)',
  'CREATE TABLE tEmP.x(a)',
  'CREATE VIEW temp.v AS SELECT 1',
  'CREATE TABLE temp.x AS SELECT * FROM main.t',
  "CREATE TRIGGER temp.tr AFTER INSERT ON main.t BEGIN UPDATE t SET v = 'hacked'; END",
  "CREATE TRIGGER [temp].tr AFTER INSERT ON main.t BEGIN UPDATE t SET v = 'hacked'; END",
  "CREATE TRIGGER \"temp\".tr AFTER INSERT ON main.t BEGIN UPDATE t SET v = 'hacked'; END",
  'CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END',
  "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET v = 'hacked'; END",
];

/** Objects created, or renamed, into D1's reserved _cf_ names (fts5 shadow tables of `_cf` would be _cf_data…). */
export const RESERVED_NAMES = [
  'CREATE TABLE _cf_x(a)',
  'CREATE TABLE main._cf_x(a)',
  'CREATE TABLE "_cf_x"(a)',
  'CREATE INDEX _cf_i ON t(a)',
  'CREATE VIEW _cf_v AS SELECT 1',
  'CREATE TRIGGER _cf_tr AFTER INSERT ON t BEGIN SELECT 1; END',
  'ALTER TABLE t RENAME TO _cf_t',
  'ALTER TABLE t RENAME TO "_cf_t"',
  'CREATE VIRTUAL TABLE _cf USING fts5(a)',
  'ALTER TABLE f RENAME TO _cf',
  'ALTER TABLE f RENAME TO _cf_f',
];

/** Calls of the guard extension's helper functions without Dione's token: each must be refused. */
export const HELPER_CALLS = [
  "SELECT dione_prepare_error(0, 'x')",
  "SELECT dione_prepare_error(0, 'PRAGMA ignore_check_constraints = 1')",
  'SELECT dione_used_bytes(0)',
  'SELECT dione_seal(0)',
  'SELECT dione_checkpoint(0)',
  'SELECT dione_release(0)',
  'SELECT dione_read_mode(0, 1)',
  'SELECT dione_keep_wal(0)',
  'SELECT dione_commit_sequence(0)',
  'SELECT dione_check(0)',
  'SELECT dione_deadline(0, 1)',
  // A guessed token is no better than 0.
  'SELECT dione_seal(1)',
  'SELECT dione_read_mode(1, 0)',
];
