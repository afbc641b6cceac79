import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The recorded D1 conformance scenarios, runner and golden results (see conformance/README.md). */
export const conformanceDir = path.join(root, 'conformance/recorded');
