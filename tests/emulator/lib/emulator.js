'use strict';
// Ties the three roles together: one HTTP server per role on 127.0.0.1, the admin endpoint
// on the API port, fault application on arrival, and presigning for the storage host.

const http = require('http');
const { Store } = require('./store');
const { Signer } = require('./sigv4');
const { Faults, RequestLog } = require('./faults');
const { Context } = require('./context');
const { Api, sendJson } = require('./api');
const { Storage, sendError, defaultError } = require('./storage');
const { HttpError, sleep } = require('./util');
const { Shaping } = require('./shaping');

const ROLES = ['api', 'download', 'storage'];

class Emulator {
  constructor({ dataDir, seedFile, ports = {}, urlTtl = 900, shaping = {}, log = () => {} }) {
    this.store = new Store(dataDir);
    this.seedFile = seedFile;
    this.ports = ports;
    this.urlTtl = urlTtl;
    this.log = log;
    this.signer = new Signer();
    this.faults = new Faults();
    this.requests = new RequestLog();
    this.shaping = new Shaping(shaping);
    this.api = new Api(this);
    this.storage = new Storage(this);
    this.servers = {};
    this.addresses = {};
  }

  async start() {
    const { seeded } = this.store.open(this.seedFile);
    if (!seeded && this.seedFile) this.log(`data directory already has state; --seed ${this.seedFile} ignored`);
    for (const role of ROLES) {
      const server = http.createServer({ highWaterMark: 1 << 20, requestTimeout: 0, keepAliveTimeout: 30000 });
      server.on('request', (req, res) => this.dispatch(role, req, res, false));
      // Storage decides on `Expect: 100-continue` itself: a request it will refuse is
      // answered before the client sends the body.
      if (role === 'storage') server.on('checkContinue', (req, res) => this.dispatch(role, req, res, true));
      server.on('clientError', (err, socket) => {
        if (socket.writable && !socket.destroyed) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      });
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.ports[role] || 0, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.servers[role] = server;
      this.addresses[role] = `127.0.0.1:${server.address().port}`;
    }
    return this.urls();
  }

  urls() {
    return {
      api: `http://${this.addresses.api}/v2`,
      download: `http://${this.addresses.download}/v2`,
      storage: `http://${this.addresses.storage}`,
      admin: `http://${this.addresses.api}/admin`,
    };
  }

  async stop() {
    await Promise.all(Object.values(this.servers).map((s) => new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    })));
  }

  /** A presigned URL on the storage host, honouring an expire_next_url fault of this request. */
  async presignFor(ctx, method, key) {
    const expire = ctx.takeLazyFault('expire_next_url');
    const date = expire ? new Date(Date.now() - (this.urlTtl + 60) * 1000) : new Date();
    return this.signer.presign(method, this.addresses.storage, key, this.urlTtl, date);
  }

  async dispatch(role, req, res, expectContinue) {
    if (role === 'api' && (req.url === '/admin' || req.url.startsWith('/admin/') || req.url.startsWith('/admin?'))) {
      return this.admin(req, res);
    }
    const ctx = new Context(this, role, req, res, expectContinue);
    this.requests.add(role, ctx.entry);
    res.on('close', () => this.log(`${role} ${req.method} ${req.url} -> ${ctx.entry.status} in=${ctx.entry.bytes_in} out=${ctx.entry.bytes_out}${ctx.entry.error ? ' ' + ctx.entry.error : ''}`));
    try {
      const fault = ctx.takeFault();
      ctx.fault = fault;
      if (fault) {
        ctx.entry.fault = fault.type;
        if (fault.type === 'delay') await sleep(fault.ms);
        if (fault.type === 'status') return await this.injectStatus(ctx, fault);
        if (fault.type === 'reset' && fault.direction === 'request') return await ctx.resetRequest(fault.after_bytes);
      }
      if (role === 'storage') await this.storage.handle(ctx);
      else await this.api.handle(ctx);
    } catch (e) {
      this.log(`${role} ${req.method} ${req.url}: ${e.stack || e}`);
      if (!res.headersSent && !res.destroyed) {
        if (role === 'storage') await sendError(ctx, 500, 'InternalError', 'We encountered an internal error. Please try again.');
        else await sendJson(ctx, 500, { error: `internal error: ${e.message}` });
      } else {
        res.destroy();
      }
    }
  }

  async injectStatus(ctx, fault) {
    const headers = { ...fault.headers };
    if (ctx.role === 'storage' && fault.body === undefined) {
      const { code, message } = defaultError(fault.status);
      return sendError(ctx, fault.status, code, message, {}, headers);
    }
    let body = fault.body;
    if (body === undefined) body = { error: `${fault.status} ${http.STATUS_CODES[fault.status] || ''} (injected fault)`.replace(' )', ')') };
    if (typeof body !== 'string') {
      body = JSON.stringify(body);
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json; charset=utf-8';
    }
    return ctx.send(fault.status, headers, ctx.method === 'HEAD' ? null : body);
  }

  // Admin endpoint: loopback only, no token, never logged nor subject to faults.
  async admin(req, res) {
    const reply = (status, value) => {
      const body = JSON.stringify(value, null, 1);
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    try {
      const path = req.url.split('?')[0].replace(/\/+$/, '');
      const readJson = async () => {
        const chunks = [];
        for await (const c of req) chunks.push(c);
        try {
          return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
        } catch {
          throw new HttpError(400, 'request body is not valid JSON');
        }
      };
      const m = req.method;
      if (path === '/admin/faults' && m === 'POST') {
        const spec = await readJson();
        const specs = Array.isArray(spec) ? spec : [spec];
        const rules = [];
        for (const s of specs) {
          try {
            rules.push(this.faults.add(s));
          } catch (e) {
            throw new HttpError(400, e.message);
          }
        }
        return reply(201, Array.isArray(spec) ? { ids: rules.map((r) => r.id) } : { id: rules[0].id });
      }
      if (path === '/admin/faults' && m === 'GET') return reply(200, this.faults.rules);
      if (path === '/admin/faults' && m === 'DELETE') return reply(200, { cleared: this.faults.clear() });
      const one = /^\/admin\/faults\/(\d+)$/.exec(path);
      if (one && m === 'DELETE') {
        if (!this.faults.remove(Number(one[1]))) throw new HttpError(404, `no fault rule ${one[1]}`);
        return reply(200, { removed: Number(one[1]) });
      }
      if (path === '/admin/presign' && m === 'POST') {
        const spec = await readJson();
        if (!spec || typeof spec.key !== 'string' || spec.key === '') throw new HttpError(400, 'key is required');
        const method = typeof spec.method === 'string' ? spec.method.toUpperCase() : 'GET';
        const ttl = spec.ttl === undefined ? this.urlTtl : spec.ttl;
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 604800) throw new HttpError(400, 'ttl must be 1..604800 seconds');
        const date = spec.expired ? new Date(Date.now() - (ttl + 60) * 1000) : new Date();
        return reply(200, { url: await this.signer.presign(method, this.addresses.storage, spec.key, ttl, date) });
      }
      if (path === '/admin/shaping' && m === 'GET') return reply(200, this.shaping.view());
      if (path === '/admin/shaping' && (m === 'PUT' || m === 'POST')) {
        const spec = await readJson();
        try {
          this.shaping.set(spec);
        } catch (e) {
          throw new HttpError(400, e.message);
        }
        return reply(200, this.shaping.view());
      }
      if (path === '/admin/shaping' && m === 'DELETE') {
        this.shaping.clear();
        return reply(200, this.shaping.view());
      }
      if (path === '/admin/requests' && m === 'GET') return reply(200, this.requests.entries);
      if (path === '/admin/requests' && m === 'DELETE') {
        this.requests.clear();
        return reply(200, { cleared: true });
      }
      if (path === '/admin/state' && m === 'GET') return reply(200, this.store.state);
      if (path === '/admin' && m === 'GET') {
        return reply(200, { urls: this.urls(), url_ttl: this.urlTtl, data_dir: this.store.dir, shaping: this.shaping.view() });
      }
      throw new HttpError(404, `no such admin endpoint: ${m} ${path}`);
    } catch (e) {
      if (e instanceof HttpError) return reply(e.status, { error: e.message });
      this.log(`admin: ${e.stack || e}`);
      return reply(500, { error: e.message });
    }
  }
}

module.exports = { Emulator };
