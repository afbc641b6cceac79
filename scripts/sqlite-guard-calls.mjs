// Source changes to SQLite that make the two calls the guard (native/dione_guard.c) makes on every
// commit cheap. Both were measured on a durable one-row insert (perf, 30k inserts), where each cost
// about a tenth of Dione's CPU:
//
// - `PRAGMA page_count` keeps its prepared statement. SQLite marks every PRAGMA statement run-once
//   (a PRAGMA's value may be fixed when it is prepared) and lets only some reuse theirs; any other
//   is prepared again each time it runs (~5 µs). page_count reads the count when it runs
//   (OP_Pagecount, in a read transaction that checks the schema), so running it again is exact.
//   The guard measures D1's size_after with it after every write.
// - The commit sequence (the header's user_version and application_id fields, see the guard) is
//   advanced by one file control, DIONE_FCNTL_NEXT_SEQUENCE, instead of an SQL text
//   `PRAGMA user_version = N` parsed and prepared for every commit. It works only inside a write
//   transaction of that database and writes page 1 exactly as OP_SetCookie does
//   (sqlite3BtreeUpdateMeta). A SQLite without this change answers SQLITE_NOTFOUND (the VFS knows
//   no such op) and the guard takes the PRAGMA path.
//
// Same rules as scripts/sqlite-row-counters.mjs (whose applyChanges applies these).

/** The file control's op; native/dione_guard.c has the same number. */
export const NEXT_SEQUENCE_OP = 1_000_001;

export const guardCallChanges = [
  {
    what: 'PRAGMA page_count: reusable (max_page_count is left as it was)',
    within: '  case PragTyp_PAGE_COUNT: {',
    line: '    sqlite3VdbeAddOp2(v, OP_ResultRow, iReg, 1);',
    insert: "    if( sqlite3Tolower(zLeft[0])=='p' ) sqlite3VdbeReusable(v);",
  },
  {
    what: 'sqlite3_file_control: DIONE_FCNTL_NEXT_SEQUENCE adds one to the commit sequence and answers it',
    within: 'SQLITE_API int sqlite3_file_control(sqlite3 *db, const char *zDbName, int op, void *pArg){',
    line: '    }else if( op==SQLITE_FCNTL_RESET_CACHE ){',
    before: [
      `    }else if( op==${NEXT_SEQUENCE_OP} ){`,
      '      /* Dione: scripts/sqlite-guard-calls.mjs. The sequence is user_version (low) and application_id (high). */',
      '      rc = SQLITE_MISUSE;',
      '      if( sqlite3BtreeTxnState(pBtree)==SQLITE_TXN_WRITE ){',
      '        u32 iLow = 0, iHigh = 0;',
      '        sqlite3_uint64 iNext;',
      '        sqlite3BtreeGetMeta(pBtree, BTREE_USER_VERSION, &iLow);',
      '        sqlite3BtreeGetMeta(pBtree, BTREE_APPLICATION_ID, &iHigh);',
      '        iNext = ((((sqlite3_uint64)iHigh)<<32) | iLow) + 1;',
      '        rc = sqlite3BtreeUpdateMeta(pBtree, BTREE_USER_VERSION, (u32)(iNext & 0xffffffff));',
      '        if( rc==SQLITE_OK && (u32)(iNext>>32)!=iHigh ){',
      '          rc = sqlite3BtreeUpdateMeta(pBtree, BTREE_APPLICATION_ID, (u32)(iNext>>32));',
      '        }',
      '        if( rc==SQLITE_OK ) *(sqlite3_uint64*)pArg = iNext;',
      '      }',
    ].join('\n'),
  },
];
