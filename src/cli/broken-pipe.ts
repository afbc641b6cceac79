// A reader that goes away early (`dione token list | head`) closes the pipe under stdout; the next
// write fails with EPIPE, which Node raises as an uncaught error with a stack trace. The output is
// not wanted any more, so the command ends quietly, as command-line tools do. Importing this
// module installs the handlers once, for every command.
const quietOnBrokenPipe = (error: NodeJS.ErrnoException): void => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
};

process.stdout.on('error', quietOnBrokenPipe);
process.stderr.on('error', quietOnBrokenPipe);
