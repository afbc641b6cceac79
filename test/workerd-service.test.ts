// workerd's own D1 binding in real Worker code, its fetcher Dione's Worker module
// (workerd/d1-service.js, shipped as dione/workerd/d1-service) in front of a Dione server, at the
// workerd release's own compatibility date: the binding's HTTP protocol (no flag) passes through it
// unchanged. The suite is test/helpers/workerd-suite.ts; workerd-jsrpc.test.ts runs it over JS RPC.
import { workerdDate, workerdPackage, workerdSuite } from './helpers/workerd-suite.ts';

workerdSuite({ via: 'service', compatibilityDate: workerdDate(workerdPackage.version) });
