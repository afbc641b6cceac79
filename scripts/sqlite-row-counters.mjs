// The source changes that give SQLite D1's meters: per-statement counters of rows read and rows
// written, incremented in the bytecode engine at the same opcodes as the counters in workerd's
// SQLite (which come from libSQL), read with sqlite3_stmt_status(stmt, 1025 | 1026, reset).
// And methods on better-sqlite3's Statement: `rowCounts()`, that returns and resets both,
// `runCounts()`, `getCounts()` and `allCounts()`, run(), get() and all() answered with them (and,
// for reads, the data version) in one call, and `dataVersion()`, the connection's
// SQLITE_FCNTL_DATA_VERSION without running a statement.
//
// Each change names the opcode (or function) it belongs to and the start of a line inside it: the
// first such line after the opcode's label (which must occur once), close to it, or the build stops: a SQLite or
// better-sqlite3 release that moved the code needs this file looked at again, never a guess.

export const ROWS_READ = 1025;
export const ROWS_WRITTEN = 1026;

const read = 'p->aDioneRows[0]++;';
const written = 'p->aDioneRows[1]++;';

/** Changes to the amalgamation, sqlite3.c. */
export const amalgamationChanges = [
  {
    what: 'the counters, in the prepared statement (struct Vdbe)',
    within: 'struct Vdbe {',
    line: '  u32 aCounter[9];',
    insert: '  u32 aDioneRows[2];       /* Dione: rows read, rows written (sqlite3_stmt_status 1025, 1026) */',
  },
  {
    what: 'sqlite3_stmt_status answers 1025 and 1026',
    within: 'SQLITE_API int sqlite3_stmt_status(sqlite3_stmt *pStmt, int op, int resetFlag){',
    line: '  if( op==SQLITE_STMTSTATUS_MEMUSED ){',
    before: [
      `  if( op==${ROWS_READ} || op==${ROWS_WRITTEN} ){`,
      `    v = pVdbe->aDioneRows[op-${ROWS_READ}];`,
      `    if( resetFlag ) pVdbe->aDioneRows[op-${ROWS_READ}] = 0;`,
      '    return (int)v;',
      '  }',
    ].join('\n'),
  },
  {
    what: 'OP_Count reads every row it counts (not the estimate)',
    within: 'case OP_Count: {',
    line: '    rc = sqlite3BtreeCount(db, pCrsr, &nEntry);',
    insert: '    p->aDioneRows[0] += nEntry;',
  },
  {
    what: 'OP_SeekGE/GT/LE/LT read the row they land on',
    within: 'case OP_SeekGT: {',
    line: '  sqlite3_search_count++;',
    beforeLine: '#ifdef SQLITE_TEST',
    before: `  ${read}`,
  },
  {
    what: 'OP_SeekRowid/NotExists read the row they look up',
    within: 'case OP_NotExists:',
    line: '  pC->seekResult = res;',
    insert: `  ${read}`,
  },
  {
    what: 'OP_Insert writes a row (not into an ephemeral table)',
    within: 'case OP_Insert: {',
    line: '  if( pOp->p5 & OPFLAG_NCHANGE ){',
    before: `  if( !pC->isEphemeral ) ${written}`,
  },
  {
    what: 'OP_Delete of a counted row writes it',
    within: 'case OP_Delete: {',
    line: '  if( opflags & OPFLAG_NCHANGE ){',
    insert: `    if( !pC->isEphemeral ) ${written}`,
  },
  {
    what: 'OP_Last reads a row',
    within: 'case OP_Last: {',
    line: '  rc = sqlite3BtreeLast(pCrsr, &res);',
    after: '  if( rc ) goto abort_due_to_error;',
    insert: `  ${read}`,
  },
  {
    what: 'OP_Rewind (and OP_SorterSort) read a row',
    within: 'case OP_Rewind: {',
    line: '  pC->nullRow = (u8)res;',
    insert: `  ${read}`,
  },
  {
    what: 'OP_Next/Prev/SorterNext read a row when they move',
    within: 'case OP_Next:',
    line: '    p->aCounter[pOp->p5]++;',
    insert: `    ${read}`,
  },
  {
    what: 'OP_IdxInsert writes an index entry',
    within: 'case OP_IdxInsert: {',
    line: '  if( pOp->p5 & OPFLAG_NCHANGE ) p->nChange++;',
    insert: `  if( !pC->isEphemeral ) ${written}`,
  },
  {
    what: 'OP_Clear writes the rows it deletes, when they count',
    within: 'case OP_Clear: {',
    line: '    p->nChange += nChange;',
    insert: '    p->aDioneRows[1] += nChange;',
  },
  {
    what: 'OP_VNext reads a row of a virtual table',
    within: 'case OP_VNext: {',
    line: '  rc = pModule->xNext(pCur->uc.pVCur);',
    after: '  if( rc ) goto abort_due_to_error;',
    insert: `  ${read}`,
  },
  {
    what: 'OP_VUpdate writes a row of a virtual table',
    within: 'case OP_VUpdate: {',
    line: '      p->nChange++;',
    before: `      ${written}`,
  },
];

/** Changes to better-sqlite3's C++ sources (relative to its src/ folder). */
export const bindingChanges = [
  {
    file: 'objects/statement.hpp',
    what: 'declare Statement#runCounts',
    within: 'class Statement',
    line: '	static NODE_METHOD(JS_columns);',
    insert: '	static NODE_METHOD(JS_runCounts);',
  },
  {
    file: 'objects/statement.cpp',
    what: 'register Statement#runCounts',
    within: 'INIT(Statement::Init) {',
    line: '	SetPrototypeMethod(isolate, data, t, "columns", JS_columns);',
    insert: '	SetPrototypeMethod(isolate, data, t, "runCounts", JS_runCounts);',
  },
  {
    file: 'objects/statement.hpp',
    what: 'declare Statement#getCounts',
    within: 'class Statement',
    line: '	static NODE_METHOD(JS_columns);',
    insert: '	static NODE_METHOD(JS_getCounts);',
  },
  {
    file: 'objects/statement.cpp',
    what: 'register Statement#getCounts',
    within: 'INIT(Statement::Init) {',
    line: '	SetPrototypeMethod(isolate, data, t, "columns", JS_columns);',
    insert: '	SetPrototypeMethod(isolate, data, t, "getCounts", JS_getCounts);',
  },
  {
    file: 'objects/statement.hpp',
    what: 'declare Statement#setResultBudget',
    within: 'class Statement',
    line: '	static NODE_METHOD(JS_columns);',
    insert: '	static NODE_METHOD(JS_setResultBudget);',
  },
  {
    file: 'objects/statement.cpp',
    what: 'register Statement#setResultBudget',
    within: 'INIT(Statement::Init) {',
    line: '	SetPrototypeMethod(isolate, data, t, "columns", JS_columns);',
    insert: '	SetPrototypeMethod(isolate, data, t, "setResultBudget", JS_setResultBudget);',
  },
  {
    file: 'objects/statement.hpp',
    what: 'declare Statement#allCounts',
    within: 'class Statement',
    line: '	static NODE_METHOD(JS_columns);',
    insert: '	static NODE_METHOD(JS_allCounts);',
  },
  {
    file: 'objects/statement.cpp',
    what: 'register Statement#allCounts',
    within: 'INIT(Statement::Init) {',
    line: '	SetPrototypeMethod(isolate, data, t, "columns", JS_columns);',
    insert: '	SetPrototypeMethod(isolate, data, t, "allCounts", JS_allCounts);',
  },
  {
    file: 'objects/statement.cpp',
    what: 'define Statement#getCounts and #allCounts: get() and all() answered with the row counts and the data version',
    append: [
      '',
      '// Dione: the rows `handle` read and wrote since the last call, into out[0] and out[1], and the',
      '// counters start again from zero (rowCounts() and the *Counts() calls below).',
      'static void DioneTakeRowCounts(v8::Isolate* isolate, sqlite3_stmt* handle, v8::Local<v8::Value>* out) {',
      `	out[0] = v8::Integer::NewFromUnsigned(isolate, (uint32_t)sqlite3_stmt_status(handle, ${ROWS_READ}, 1));`,
      `	out[1] = v8::Integer::NewFromUnsigned(isolate, (uint32_t)sqlite3_stmt_status(handle, ${ROWS_WRITTEN}, 1));`,
      '}',
      '',
      "// Dione: get() and all() answered as [row (or rows), rows read, rows written, data version]: the",
      '// result, its row counts (rowCounts()) and the connection\'s data version after it (dataVersion()),',
      '// which the engine asks after every read, in one native call instead of three.',
      'static v8::Local<v8::Value> DioneCounted(v8::Isolate* isolate, sqlite3_stmt* handle, v8::Local<v8::Value> result) {',
      '	unsigned int version = 0;',
      '	sqlite3_file_control(sqlite3_db_handle(handle), "main", SQLITE_FCNTL_DATA_VERSION, &version);',
      '	v8::Local<v8::Value> answer[4];',
      '	answer[0] = result;',
      '	DioneTakeRowCounts(isolate, handle, answer + 1);',
      '	answer[3] = v8::Number::New(isolate, static_cast<double>(version));',
      '	return v8::Array::New(isolate, answer, 4);',
      '}',
      '',
      '// The first row, of a query run to its end as D1 runs it for first(): a later row that fails',
      '// fails it, and every row read counts.',
      'NODE_METHOD(Statement::JS_getCounts) {',
      '	STATEMENT_START(REQUIRE_STATEMENT_RETURNS_DATA, DOES_NOT_MUTATE);',
      '	int status = sqlite3_step(handle);',
      '	v8::Local<v8::Value> row = status == SQLITE_ROW',
      '		? Data::GetRowJS(isolate, OnlyContext, handle, stmt->safe_ints, stmt->mode)',
      '		: v8::Undefined(isolate).As<v8::Value>();',
      '	while (status == SQLITE_ROW) status = sqlite3_step(handle);',
      '	if (sqlite3_reset(handle) == SQLITE_OK) {',
      '		STATEMENT_RETURN(DioneCounted(isolate, handle, row));',
      '	}',
      '	STATEMENT_THROW();',
      '}',
      '',
      '// Dione: how large all()\'s rows may grow (about what they take on their way: a text\'s bytes and',
      '// quotes, two characters a BLOB byte, eight any other value, and 128 a row for its arrays), 0 for',
      '// no bound; one for the',
      '// process (a server sets it in every worker). Stepping stops once the rows read pass it, so a',
      '// query of many large values fails rather than filling the memory first.',
      '#include <atomic>',
      'static std::atomic<double> dione_result_budget(0);',
      '',
      'NODE_METHOD(Statement::JS_setResultBudget) {',
      '	_REQUIRE_ARGUMENT(first, v8::Local<v8::Number> bytes, Number, a number);',
      '	dione_result_budget.store(bytes->Value());',
      '}',
      '',
      'NODE_METHOD(Statement::JS_allCounts) {',
      '	STATEMENT_START(REQUIRE_STATEMENT_RETURNS_DATA, DOES_NOT_MUTATE);',
      '	UseContext;',
      '	std::vector<v8::Local<v8::Value>> rows;',
      '	const double budget = dione_result_budget.load();',
      '	double size = 0;',
      '	while (sqlite3_step(handle) == SQLITE_ROW) {',
      '		if (rows.size() == 0xffffffff) {',
      '			sqlite3_reset(handle);',
      '			db->GetState()->busy = false;',
      '			if (!bound) sqlite3_clear_bindings(handle);',
      '			return ThrowRangeError("Array overflow (too many rows returned)");',
      '		}',
      '		if (budget > 0) {',
      '			size += 128;',
      '			int columns = sqlite3_column_count(handle);',
      '			for (int i = 0; i < columns; ++i) {',
      '				int type = sqlite3_column_type(handle, i);',
      '				if (type == SQLITE_TEXT) size += sqlite3_column_bytes(handle, i) + 3;',
      '				else if (type == SQLITE_BLOB) size += 2.0 * sqlite3_column_bytes(handle, i) + 2;',
      '				else size += 8;',
      '			}',
      '			if (size > budget) {',
      '				sqlite3_reset(handle);',
      '				db->GetState()->busy = false;',
      '				if (!bound) sqlite3_clear_bindings(handle);',
      '				return ThrowRangeError("dione: result too large");',
      '			}',
      '		}',
      '		rows.push_back(Data::GetRowJS(isolate, ctx, handle, stmt->safe_ints, stmt->mode));',
      '	}',
      '	if (sqlite3_reset(handle) == SQLITE_OK) {',
      '		STATEMENT_RETURN(DioneCounted(isolate, handle, v8::Array::New(isolate, rows.data(), rows.size())));',
      '	}',
      '	STATEMENT_THROW();',
      '}',
      '',
    ].join('\n'),
  },
  {
    file: 'objects/statement.cpp',
    what: 'define Statement#runCounts: run(), answered as [changes, last row id, rows read, rows written]',
    append: [
      '',
      '// Dione: run() and rowCounts() in one call, answered as an array built from its elements: run()',
      "// builds its { changes, lastInsertRowid } property by property, which costs more than the step of",
      '// a one-row INSERT. The last row id is a BigInt when the statement reads safe integers.',
      'NODE_METHOD(Statement::JS_runCounts) {',
      '	STATEMENT_START(ALLOW_ANY_STATEMENT, DOES_MUTATE);',
      '	sqlite3* db_handle = db->GetHandle();',
      '	int total_changes_before = sqlite3_total_changes(db_handle);',
      '	sqlite3_step(handle);',
      '	if (sqlite3_reset(handle) == SQLITE_OK) {',
      '		int changes = sqlite3_total_changes(db_handle) == total_changes_before ? 0 : sqlite3_changes(db_handle);',
      '		sqlite3_int64 id = sqlite3_last_insert_rowid(db_handle);',
      '		v8::Local<v8::Value> result[4];',
      '		result[0] = v8::Int32::New(isolate, changes);',
      '		result[1] = stmt->safe_ints ? v8::BigInt::New(isolate, id).As<v8::Value>() : v8::Number::New(isolate, (double)id).As<v8::Value>();',
      '		DioneTakeRowCounts(isolate, handle, result + 2);',
      '		STATEMENT_RETURN(v8::Array::New(isolate, result, 4));',
      '	}',
      '	STATEMENT_THROW();',
      '}',
      '',
    ].join('\n'),
  },
  {
    file: 'objects/statement.hpp',
    what: 'declare Statement#rowCounts',
    within: 'class Statement',
    line: '	static NODE_METHOD(JS_columns);',
    insert: '	static NODE_METHOD(JS_rowCounts);',
  },
  {
    file: 'objects/statement.cpp',
    what: 'register Statement#rowCounts',
    within: 'INIT(Statement::Init) {',
    line: '	SetPrototypeMethod(isolate, data, t, "columns", JS_columns);',
    insert: '	SetPrototypeMethod(isolate, data, t, "rowCounts", JS_rowCounts);',
  },
  {
    file: 'objects/statement.hpp',
    what: 'declare Statement#dataVersion',
    within: 'class Statement',
    line: '	static NODE_METHOD(JS_columns);',
    insert: '	static NODE_METHOD(JS_dataVersion);',
  },
  {
    file: 'objects/statement.cpp',
    what: 'register Statement#dataVersion',
    within: 'INIT(Statement::Init) {',
    line: '	SetPrototypeMethod(isolate, data, t, "columns", JS_columns);',
    insert: '	SetPrototypeMethod(isolate, data, t, "dataVersion", JS_dataVersion);',
  },
  {
    file: 'objects/statement.cpp',
    what: "define Statement#dataVersion: the connection's SQLITE_FCNTL_DATA_VERSION",
    append: [
      '',
      "// Dione: the data version of the statement's connection (SQLITE_FCNTL_DATA_VERSION: changes when",
      '// any connection committed, as seen by this one), asked without running a statement.',
      'NODE_METHOD(Statement::JS_dataVersion) {',
      '	Statement* stmt = Unwrap<Statement>(info.This());',
      '	if (!stmt->alive) return ThrowTypeError("The statement has been finalized");',
      '	unsigned int version = 0;',
      '	sqlite3_file_control(stmt->db->GetHandle(), "main", SQLITE_FCNTL_DATA_VERSION, &version);',
      '	info.GetReturnValue().Set(static_cast<double>(version));',
      '}',
      '',
    ].join('\n'),
  },
  {
    file: 'objects/statement.cpp',
    what: 'define Statement#rowCounts: [rows read, rows written] since the last call',
    append: [
      '',
      '// Dione: the rows this statement read and wrote since the last call (its runs add up).',
      'NODE_METHOD(Statement::JS_rowCounts) {',
      '	Statement* stmt = Unwrap<Statement>(info.This());',
      '	UseIsolate;',
      '	if (!stmt->alive) return ThrowTypeError("The statement has been finalized");',
      // Built from its elements in one call, which costs far less than setting them one by one.
      '	v8::Local<v8::Value> counts[2];',
      '	DioneTakeRowCounts(isolate, stmt->handle, counts);',
      '	info.GetReturnValue().Set(v8::Array::New(isolate, counts, 2));',
      '}',
      '',
    ].join('\n'),
  },
];

const REACH = 12_000; // how far after its label a change's line may be

/**
 * Applies `changes` to `text` (each inserts a line after its anchor line, `before` it, or `replace`s
 * it); throws naming the first change whose place is not found exactly once.
 */
export function applyChanges(text, changes, fileName) {
  let out = `\n${text}`; // every searched line starts after a newline, the first one too
  for (const change of changes) {
    if (change.append) {
      out += change.append;
      continue;
    }
    const start = out.indexOf(`\n${change.within}`);
    if (start < 0 || out.indexOf(`\n${change.within}`, start + 1) >= 0) {
      throw new Error(`${fileName}: "${change.within}" is not found exactly once (${change.what})`);
    }
    const region = out.slice(start, start + REACH);
    const at = region.indexOf(`\n${change.line}`);
    if (at < 0) throw new Error(`${fileName}: no line "${change.line.trim()}" after "${change.within}" (${change.what})`);
    let lineStart = start + at + 1;
    let lineEnd = out.indexOf('\n', lineStart) + 1;
    if (change.after) {
      // The insertion goes after a later line (the error check that follows the anchor).
      const follow = out.indexOf(`\n${change.after}`, lineStart);
      if (follow < 0 || follow - lineStart > 400) {
        throw new Error(`${fileName}: no line "${change.after.trim()}" soon after "${change.line.trim()}" (${change.what})`);
      }
      lineEnd = out.indexOf('\n', follow + 1) + 1;
    }
    if (change.beforeLine) {
      const previous = out.lastIndexOf(`\n${change.beforeLine}\n`, lineStart - 1);
      if (previous < 0 || lineStart - previous > change.beforeLine.length + 2) {
        throw new Error(`${fileName}: no line "${change.beforeLine}" right before "${change.line.trim()}" (${change.what})`);
      }
      lineStart = previous + 1;
    }
    if (change.replace !== undefined) out = `${out.slice(0, lineStart)}${change.replace}\n${out.slice(lineEnd)}`;
    else if (change.before !== undefined) out = `${out.slice(0, lineStart)}${change.before}\n${out.slice(lineStart)}`;
    else out = `${out.slice(0, lineEnd)}${change.insert}\n${out.slice(lineEnd)}`;
  }
  return out.slice(1);
}
