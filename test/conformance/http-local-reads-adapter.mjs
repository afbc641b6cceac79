// Conformance adapter: dione/client against a real Dione server whose reads are answered on its
// HTTP thread from the first read a worker has answered (local reads at their most eager), so every
// scenario also checks that those answers are the worker's, meta included.
import { serverAdapter } from './http-adapter.mjs';

export const { makeDb, teardown } = serverAdapter({ localReads: 1 });
