#!/usr/bin/env node
'use strict';
// Loopback servers for tests/lua/tls_spec.lua: an HTTPS server offering HTTP/2 by ALPN
// (and HTTP/1.1), a second one whose certificate names only "localhost", a plain HTTP
// server, and a forward proxy (absolute-URI requests and CONNECT tunnels).
//
//   node tls_server.js --certs DIR --log FILE
//
// DIR holds server.pem/server.key (SAN 127.0.0.1 and localhost) and localhost.pem/
// localhost.key (SAN localhost only). Every request handled is appended to FILE as one
// JSON line before it is answered, so a client that got its answer can read the log.
// When listening, prints one JSON line {https, https_localhost, http, proxy, dead} of
// URLs (dead: a loopback port nobody listens on).
// Stops on SIGTERM/SIGINT.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const http2 = require('node:http2');
const net = require('node:net');

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--certs') opts.certs = argv[++i];
    else if (argv[i] === '--log') opts.log = argv[++i];
    else throw new Error(`unknown argument '${argv[i]}'`);
  }
  if (!opts.certs || !opts.log) throw new Error('usage: node tls_server.js --certs DIR --log FILE');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const record = (entry) => fs.appendFileSync(opts.log, JSON.stringify(entry) + '\n');

// Objects PUT to /obj/..., served back by GET: a storage host in miniature.
const objects = new Map();

function plainHeaders(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':')) out[k] = v;
  return out;
}

function handler(name) {
  return (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      record({
        server: name,
        method: req.method,
        path: req.url,
        version: req.httpVersion,
        headers: plainHeaders(req.headers),
        bytes: body.length,
      });
      const obj = req.url.startsWith('/obj/') ? req.url.split('?')[0] : null;
      if (req.method === 'PUT' && obj) {
        objects.set(obj, body);
        const md5 = crypto.createHash('md5').update(body).digest('hex');
        res.writeHead(200, { ETag: `"${md5}"`, 'Content-Length': 0 });
        res.end();
      } else if (req.method === 'GET' && obj && objects.has(obj)) {
        const data = objects.get(obj);
        const md5 = crypto.createHash('md5').update(data).digest('hex');
        res.writeHead(200, {
          ETag: `"${md5}"`,
          'Content-Length': data.length,
          'Content-Type': 'application/octet-stream',
        });
        res.end(data);
      } else if (req.method === 'GET' && !obj) {
        const text = `hello from ${name} over HTTP/${req.httpVersion}\n`;
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      } else {
        const xml = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>' +
          '<Message>The specified key does not exist.</Message></Error>';
        res.writeHead(404, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(xml) });
        res.end(xml);
      }
    });
  };
}

function secureServer(name, prefix) {
  return http2.createSecureServer({
    allowHTTP1: true,
    key: fs.readFileSync(`${opts.certs}/${prefix}.key`),
    cert: fs.readFileSync(`${opts.certs}/${prefix}.pem`),
  }, handler(name));
}

// The forward proxy: plain HTTP requests arrive with an absolute URI and are sent on;
// CONNECT opens a TCP tunnel (403 for the host denied.invalid, 502 when the target
// refuses). Nothing is cached or rewritten beyond the hop headers.
const sockets = new Set();
const proxy = http.createServer((req, res) => {
  let target;
  try {
    target = new URL(req.url);
  } catch {
    target = null;
  }
  record({ server: 'proxy', method: req.method, url: req.url, headers: plainHeaders(req.headers) });
  if (!target || target.protocol !== 'http:') {
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end('absolute http:// URI required\n');
    return;
  }
  const headers = { ...req.headers };
  delete headers['proxy-connection'];
  delete headers['proxy-authorization'];
  const up = http.request({
    host: target.hostname,
    port: target.port || 80,
    method: req.method,
    path: target.pathname + target.search,
    headers,
  }, (upRes) => {
    res.writeHead(upRes.statusCode, upRes.headers);
    upRes.pipe(res);
  });
  up.on('error', (e) => {
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(`proxy: ${e.message}\n`);
  });
  req.pipe(up);
});
proxy.on('connect', (req, client, head) => {
  record({ server: 'proxy', method: 'CONNECT', url: req.url, headers: plainHeaders(req.headers) });
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(req.url);
  if (!m) {
    client.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  if (m[1] === 'denied.invalid') { // the proxy's policy, decided without resolving the name
    client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  let open = false;
  const up = net.connect(Number(m[2]), m[1], () => {
    open = true;
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) up.write(head);
    up.pipe(client);
    client.pipe(up);
  });
  sockets.add(up);
  up.on('close', () => sockets.delete(up));
  up.on('error', (e) => {
    if (open) client.destroy();
    else client.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nX-Proxy-Error: ${e.code}\r\n\r\n`);
  });
  client.on('error', () => up.destroy());
});

const servers = {
  https: secureServer('https', 'server'),
  https_localhost: secureServer('https_localhost', 'localhost'),
  http: http.createServer(handler('http')),
  proxy,
};
for (const s of Object.values(servers)) {
  s.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

async function main() {
  const ports = {};
  for (const [name, s] of Object.entries(servers)) ports[name] = await listen(s);
  // A port that was free a moment ago and has nobody listening: connections are refused.
  const closed = net.createServer();
  ports.dead = await listen(closed);
  await new Promise((resolve) => closed.close(resolve));
  process.stdout.write(JSON.stringify({
    https: `https://127.0.0.1:${ports.https}`,
    https_localhost: `https://127.0.0.1:${ports.https_localhost}`,
    http: `http://127.0.0.1:${ports.http}`,
    proxy: `http://127.0.0.1:${ports.proxy}`,
    dead: `http://127.0.0.1:${ports.dead}`,
  }) + '\n');
}

function stop() {
  for (const s of Object.values(servers)) s.close();
  for (const sock of sockets) sock.destroy();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

main().catch((e) => {
  process.stderr.write(`tls_server: ${e.message}\n`);
  process.exit(1);
});
