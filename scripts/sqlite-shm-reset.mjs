// A source change to SQLite's unix VFS: the first connection to open a database in WAL mode (none
// other has its -shm attached) truncates the -shm file to 3 bytes, which makes its wal-index
// invalid, and the wal-index is then rebuilt from the WAL; mapping it grows the file back, one
// write per 4 KiB page. On a server that opens and closes thousands of databases, each open freed
// and reallocated those blocks: ~14% of opening, closing and reading a database with a history
// (an ftruncate and eight one-byte writes; on a filesystem mounted with `discard`, each truncate
// also discards the freed blocks). With this change, a -shm already as large as the first region
// SQLite maps (32 KiB) keeps its size and blocks; its header (two copies of the wal-index header
// and the checkpoint info, the first 136 bytes) is overwritten with zeros instead, which SQLite
// reads exactly as it reads the truncated file: a wal-index never initialized, rebuilt from the
// WAL. What lies past the header is never read before it is rewritten: a reader looks only at
// frames up to the header's last frame, and a hash table is cleared when its first frame is added.
// A smaller -shm (a new one, or one another program truncated) is truncated as before.
//
// Same rules as scripts/sqlite-row-counters.mjs (whose applyChanges applies these).

export const shmResetChanges = [
  {
    what: 'the reset of a -shm file: its header zeroed, or the file truncated as SQLite does',
    within: 'static int unixLockSharedMemory(unixFile *pDbFd, unixShmNode *pShmNode){',
    line: 'static int unixLockSharedMemory(unixFile *pDbFd, unixShmNode *pShmNode){',
    before: [
      '/* Dione: see scripts/sqlite-shm-reset.mjs. Nonzero on failure, as robust_ftruncate(). */',
      'static int dioneResetShm(int h){',
      '  static const char aZero[136] = {0};',
      '  struct stat sStat;',
      '  int iErrno = 0;',
      '  if( osFstat(h, &sStat)==0 && sStat.st_size>=32768',
      '   && seekAndWriteFd(h, 0, aZero, (int)sizeof(aZero), &iErrno)==(int)sizeof(aZero) ){',
      '    return 0;',
      '  }',
      '  return robust_ftruncate(h, 3);',
      '}',
      '',
    ].join('\n'),
  },
  {
    what: 'unixLockSharedMemory: the first connection resets the -shm file',
    within: 'static int unixLockSharedMemory(unixFile *pDbFd, unixShmNode *pShmNode){',
    line: '      if( rc==SQLITE_OK && robust_ftruncate(pShmNode->hShm, 3) ){',
    replace: '      if( rc==SQLITE_OK && dioneResetShm(pShmNode->hShm) ){',
  },
];
