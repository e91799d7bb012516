'use strict';
/*
 * HTTP/1.1 upstreams for the plain-proxying tests: Node's own `http` server (keep-alive,
 * chunked replies, trailers, HEAD, 204, `connection: close`, idle connections closed after
 * `keepAliveTimeout`), and beside it a raw TCP server that answers the way real servers
 * sometimes do and `http` never would (bodies delimited by closing, cut-short bodies,
 * garbage, silence).
 *
 * Node `http` paths:
 *   /len                 "fixed body" with content-length
 *   /chunked?n=N&size=S  N chunks of S bytes ("a".."z" repeating), written one per tick, no
 *                        content-length (so chunked), with an `x-chunks` trailer
 *   /big?bytes=N         N bytes with content-length; x-sha256 header of the body
 *   /echo                JSON: method, url, headers, body length, sha256, first and last 16
 *                        bytes, socket port
 *   /conn                JSON: the client socket's remote port (to see connection reuse)
 *   /slow?n=N&ms=M       N chunks of 1000 bytes, one every M ms; an answer the client
 *                        abandons before its end is counted
 *   /aborted             JSON: how many /slow answers were abandoned so far
 *   /nocontent           204
 *   /close               "bye" with `connection: close` (Node closes after)
 * Raw TCP paths (second port):
 *   /until-close         HTTP/1.0-style body ending when the connection closes
 *   /cut                 content-length 100, 10 bytes, then close
 *   /te-and-cl           chunked body with a (wrong) content-length beside it
 *   /early               413 and close, without reading the request body
 *   /garbage             not HTTP at all
 *   /silent-close        closes without answering
 *
 * Usage: node http_upstream.js KEEPALIVE_MS RAW_PORT   (prints "LISTENING <http port>" once
 *        both listen)
 */

const crypto = require('crypto');
const http = require('http');
const net = require('net');

const keepAliveMs = Number(process.argv[2] || 5000);
const rawPort = Number(process.argv[3] || 0);

function pattern(n) {
  const buf = Buffer.alloc(n);
  for (let i = 0; i < n; i++) buf[i] = 97 + (i % 26);
  return buf;
}

let aborted = 0;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  switch (url.pathname) {
    case '/len':
      res.setHeader('content-length', 10);
      res.end('fixed body');
      return;
    case '/chunked': {
      const n = Number(url.searchParams.get('n') || 3);
      const size = Number(url.searchParams.get('size') || 5);
      res.setHeader('trailer', 'x-chunks');
      let i = 0;
      const next = () => {
        if (i === n) {
          res.addTrailers({ 'x-chunks': String(n) });
          res.end();
          return;
        }
        i++;
        res.write(pattern(size));
        setImmediate(next);
      };
      next();
      return;
    }
    case '/big': {
      const body = pattern(Number(url.searchParams.get('bytes') || 1000));
      res.setHeader('content-length', body.length);
      res.setHeader('x-sha256', crypto.createHash('sha256').update(body).digest('hex'));
      res.end(body);
      return;
    }
    case '/echo': {
      const hash = crypto.createHash('sha256');
      let length = 0;
      let first = Buffer.alloc(0);
      let last = Buffer.alloc(0);
      req.on('data', (d) => {
        hash.update(d);
        length += d.length;
        if (first.length < 16) first = Buffer.concat([first, d]).subarray(0, 16);
        last = Buffer.concat([last, d]).subarray(-16);
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({
          method: req.method,
          url: req.url,
          headers: req.headers,
          length,
          sha256: hash.digest('hex'),
          head: first.toString('latin1'),
          tail: last.toString('latin1'),
          port: req.socket.remotePort,
        }));
      });
      return;
    }
    case '/slow': {
      const n = Number(url.searchParams.get('n') || 100);
      const ms = Number(url.searchParams.get('ms') || 20);
      let i = 0;
      let done = false;
      res.on('close', () => { if (!done) aborted++; });
      const tick = () => {
        if (i === n) { done = true; res.end(); return; }
        i++;
        res.write(pattern(1000));
        setTimeout(tick, ms);
      };
      tick();
      return;
    }
    case '/aborted':
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ aborted }));
      return;
    case '/conn':
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ port: req.socket.remotePort }));
      return;
    case '/nocontent':
      res.statusCode = 204;
      res.end();
      return;
    case '/close':
      res.setHeader('connection', 'close');
      res.end('bye');
      return;
    default:
      res.statusCode = 404;
      res.end('no such path');
  }
});
server.keepAliveTimeout = keepAliveMs;

const raw = net.createServer((socket) => {
  let seen = '';
  socket.on('data', (d) => {
    seen += d.toString('latin1');
    if (!seen.includes('\r\n\r\n')) return;
    const path = seen.split(' ')[1] || '';
    if (path.endsWith('/until-close')) {
      socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nread until the end');
    } else if (path.endsWith('/cut')) {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789');
      setTimeout(() => socket.destroy(), 50);
    } else if (path.endsWith('/te-and-cl')) {
      // Both framings: Transfer-Encoding wins; the Content-Length must not be forwarded.
      socket.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n' +
        '5\r\nhello\r\n0\r\n\r\n');
    } else if (path.endsWith('/early')) {
      // Refuses an upload without reading it, then closes (as many servers do for 413).
      socket.end('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\nconnection: close\r\n\r\ntoo big\n');
      socket.removeAllListeners('data');
      socket.pause();
    } else if (path.endsWith('/garbage')) {
      socket.end('this is not HTTP\r\n\r\n');
    } else {
      socket.destroy();
    }
  });
  socket.on('error', () => {});
});

server.listen(0, '127.0.0.1', () => {
  raw.listen(rawPort, '127.0.0.1', () => {
    console.log(`LISTENING ${server.address().port}`);
  });
});
