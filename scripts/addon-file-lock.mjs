// A source change to better-sqlite3's addon: one more export, `dioneLockFile(fd)`, that takes an
// exclusive advisory lock (flock) on an open file without waiting and returns 0, or the errno
// that refused it. A database's write log has one writer (src/log/lock.ts); that lock was a
// SQLite connection on a lock file, ~100 µs and ~70 KB of every open of a database with a
// history, where flock costs a system call. A flock belongs to the open file description: another
// open of the file conflicts with it, in this process (another thread) or another, and closing
// the descriptor (or the process ending) lets it go.
//
// Same rules as scripts/sqlite-row-counters.mjs (whose applyChanges applies these).

export const fileLockChanges = [
  {
    file: 'better_sqlite3.cpp',
    what: 'the headers of flock and errno',
    within: '#include <sqlite3.h>',
    line: '#include <sqlite3.h>',
    insert: ['#include <cerrno>', '#ifndef _WIN32', '#include <sys/file.h>', '#endif'].join('\n'),
  },
  {
    file: 'better_sqlite3.cpp',
    what: 'define dioneLockFile',
    within: 'NODE_MODULE_INIT(/* exports, context */) {',
    line: 'NODE_MODULE_INIT(/* exports, context */) {',
    before: [
      '// Dione: an exclusive flock on the open file `fd`, not waiting: 0 when taken, else the errno.',
      'static void DioneLockFile(const v8::FunctionCallbackInfo<v8::Value>& info) {',
      '	if (info.Length() < 1 || !info[0]->IsInt32()) return ThrowTypeError("Expected a file descriptor");',
      '	int fd = info[0].As<v8::Int32>()->Value();',
      '#ifdef _WIN32',
      '	int result = ENOSYS;',
      '#else',
      '	int result = 0;',
      '	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {',
      '		if (errno != EINTR) { result = errno; break; }',
      '	}',
      '#endif',
      '	info.GetReturnValue().Set(result);',
      '}',
      '',
    ].join('\n'),
  },
  {
    file: 'better_sqlite3.cpp',
    what: 'export dioneLockFile',
    within: 'NODE_MODULE_INIT(/* exports, context */) {',
    line: '	exports->Set(context, InternalizedFromLatin1(isolate, "setErrorConstructor")',
    insert:
      '	exports->Set(context, InternalizedFromLatin1(isolate, "dioneLockFile"), v8::FunctionTemplate::New(isolate, DioneLockFile)->GetFunction(context).ToLocalChecked()).FromJust();',
  },
];
