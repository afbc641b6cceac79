// bench:server's yardstick: a plain node:http server in its own process that reads each request's
// body and answers it with fixed bytes (one real answer of Dione's, with its content-type), so the
// ratio to it is what Dione costs beyond Node's HTTP itself. Forked by harness.ts startHello().
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

if (process.send) {
  process.once('message', ({ body, contentType }: { body: string; contentType: string }) => {
    const bytes = Buffer.from(body, 'base64');
    const headers = { 'content-type': contentType, 'content-length': String(bytes.length) };
    const server = createServer((req, res) => {
      req.resume();
      req.once('end', () => {
        res.writeHead(200, headers);
        res.end(bytes);
      });
    });
    server.listen(0, '127.0.0.1', () => {
      process.send!({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    });
    // The bench stops it with SIGTERM; without its parent it has no reason to run.
    process.once('disconnect', () => process.exit(0));
  });
}
