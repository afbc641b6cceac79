// workerd's own D1 binding in real Worker code against a Dione server, with the binding's fetcher an
// external service pointing at Dione (README's configuration), at the compatibility date golden.json
// was recorded with (test/helpers/workerd-suite.ts has the suite). workerd-service.test.ts runs it
// through Dione's Worker module, workerd-jsrpc.test.ts with the d1_binding_jsrpc flag.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deepDiff, lastField, workerdSuite } from './helpers/workerd-suite.ts';

test('deepDiff finds differences at any depth and ignores key order only', () => {
  assert.deepEqual(deepDiff({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }), []);
  assert.deepEqual(deepDiff({ a: [1, 2] }, { a: [2, 1] }), [
    { path: '$.a[0]', expected: 1, actual: 2 },
    { path: '$.a[1]', expected: 2, actual: 1 },
  ]);
  assert.deepEqual(deepDiff({ m: { rows_read: 3 }, x: null }, { m: { rows_read: 2 }, y: 1, x: 0 }), [
    { path: '$.m.rows_read', expected: 3, actual: 2 },
    { path: '$.x', expected: null, actual: 0 },
    { path: '$.y', expected: '<absent>', actual: 1 },
  ]);
  assert.deepEqual(deepDiff([1], [1, 2]), [{ path: '$.length', expected: 1, actual: 2 }]);
  assert.deepEqual(deepDiff({ a: 1 }, {}), [{ path: '$.a', expected: 1, actual: '<missing>' }]);
  assert.equal(lastField('$[2].meta.rows_read'), 'rows_read');
  assert.equal(lastField('$.r[0].rows_read'), 'rows_read');
});

// ------------------------------------------------------------------ the suite

workerdSuite({ via: 'external' });
