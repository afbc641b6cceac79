// workerd's own D1 binding under the `d1_binding_jsrpc` compatibility flag, in real Worker code:
// the binding calls its fetcher's JS RPC method query() instead of POST /query and /execute, so an
// external service pointing at Dione is not enough (every call fails with "Network connection
// lost."). Dione's Worker module (workerd/d1-service.js) implements query() and forwards it to the
// server. The flag is experimental in workerd (no compatibility date turns it on; workerd refuses it
// without --experimental), so this runs at the release's own date with the flag set. A workerd that
// does not know the flag (older than the devDependency: run npm install) skips it, saying so.
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { workerdDate, workerdPackage, workerdSuite } from './helpers/workerd-suite.ts';

const knowsFlag = readFileSync(workerdPackage.default).includes('d1_binding_jsrpc');
if (knowsFlag) workerdSuite({ via: 'service', jsrpc: true, compatibilityDate: workerdDate(workerdPackage.version) });
else test('workerd D1 binding over JS RPC', { skip: `workerd ${workerdPackage.version} has no d1_binding_jsrpc flag (npm install brings the newer one)` }, () => {});
