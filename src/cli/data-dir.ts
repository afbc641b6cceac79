// The data folder of a Dione server, for the commands that work on its catalogue directly
// (`dione token …`, `dione d1 create --data`). `dione serve` takes --data, else DIONE_DATA, else
// ./.dione in the folder it was started from, and creates it. These commands never create one: a
// catalogue made where no server looks would hold tokens and databases nobody serves.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULTS } from '../server/config.ts';
import { CliError } from './d1/output.ts';

const CATALOG_FILE = 'catalog.sqlite';

export const hasCatalog = (dir: string) => existsSync(path.join(dir, CATALOG_FILE));

/** The folder `dione serve` would use if started here with the same flag and environment. */
export function serveDataDir(flag: string | undefined, cwd = process.cwd()): string {
  return path.resolve(cwd, flag ?? (process.env.DIONE_DATA || DEFAULTS.data));
}

const serverHint = '`dione serve` prints the folder it uses when it starts ("dione: data in …")';

/**
 * The folder given by --data (or DIONE_DATA), which must hold a catalogue; without either, the
 * nearest ./.dione holding one, from `cwd` upwards (a server started at a project's root, a
 * command run from one of its folders).
 */
export function existingDataDir(flag: string | undefined, cwd = process.cwd()): string {
  const fromEnv = process.env.DIONE_DATA || undefined;
  const given = flag ?? fromEnv;
  if (given !== undefined) {
    const dir = path.resolve(cwd, given);
    if (hasCatalog(dir)) return dir;
    const source = flag !== undefined ? '--data' : 'DIONE_DATA';
    throw new CliError(
      `No Dione catalogue in ${dir} (${source}): there is no ${CATALOG_FILE} there. Give the data folder of your server with --data <dir>; ${serverHint}. ` +
        'For a server that has not started yet, `dione token create --data <dir> --init` makes its catalogue.',
    );
  }
  for (let dir = path.resolve(cwd); ; ) {
    const candidate = path.join(dir, DEFAULTS.data);
    if (hasCatalog(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new CliError(
    `No Dione catalogue found: no ${DEFAULTS.data}/${CATALOG_FILE} in ${path.resolve(cwd)} or any folder above it. ` +
      `Give the data folder of your server with --data <dir> (or DIONE_DATA); ${serverHint}. Nothing was created.`,
  );
}
