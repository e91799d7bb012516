'use strict';
/*
 * Node's own HTTP/1.1 client against the gateway's HTTP/1.1 server (which proxies to
 * http_upstream.js): keep-alive reuse, `Expect: 100-continue`, a chunked upload written in
 * pieces, and a large download checked by hash. Prints one JSON object with what it saw.
 *
 * Usage: node http1_client.js GATEWAY_PORT
 */

const crypto = require('crypto');
const http = require('http');

const port = Number(process.argv[2]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(options, write) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent, ...options }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ res, body: Buffer.concat(parts), reused: req.reusedSocket, continued: req.continued }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('continue', () => { req.continued = true; });
    write(req);
  });
}

async function main() {
  const out = {};
  // Keep-alive: twenty requests, one socket.
  let reused = 0;
  for (let i = 0; i < 20; i++) {
    const { res, reused: r } = await call({ path: `/conn?i=${i}` }, (req) => req.end());
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    if (r) reused++;
  }
  out.reused = reused;

  // Expect: 100-continue: the body is written only once the gateway says so.
  const body = Buffer.alloc(200000, 'x');
  const expect = await call(
    { method: 'POST', path: '/echo', headers: { expect: '100-continue', 'content-length': body.length } },
    (req) => req.on('continue', () => req.end(body)),
  );
  out.continue = { status: expect.res.statusCode, continued: !!expect.continued, seen: JSON.parse(expect.body) };

  // A chunked upload written in ten pieces, a tick apart.
  const chunked = await call({ method: 'POST', path: '/echo' }, (req) => {
    let n = 0;
    const next = () => {
      if (n === 10) return req.end();
      req.write(Buffer.alloc(1000, 97 + n));
      n++;
      setTimeout(next, 5);
    };
    next();
  });
  out.chunked = { status: chunked.res.statusCode, seen: JSON.parse(chunked.body) };

  // A 2 MB download, hashed.
  const big = await call({ path: '/big?bytes=2000000' }, (req) => req.end());
  out.big = {
    status: big.res.statusCode,
    length: big.body.length,
    hash_matches: crypto.createHash('sha256').update(big.body).digest('hex') === big.res.headers['x-sha256'],
  };
  agent.destroy();
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
