'use strict';
// Test helpers: start the emulator as its own process on a fresh data directory, drive it
// with plain curl (and fetch), read the admin endpoint.

const { spawn, execFile } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const net = require('net');

const SERVER = path.join(__dirname, '..', 'server.js');
const TOKEN = 'demo-token';
const MODEL_PATH = 'organizations/demo-org/apps/demo-app/models/demo-model';

function tmpDir(prefix = 'skafos-emu-test-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Start `node server.js`; resolves once its JSON line is out. */
function launch(args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [SERVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stderr.on('data', (c) => { err += c; });
    const onData = (c) => {
      out += c;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        proc.stdout.off('data', onData);
        proc.stdout.on('data', (more) => { proc.extraStdout = (proc.extraStdout || '') + more; });
        try {
          resolve({ proc, urls: JSON.parse(out.slice(0, nl)), line: out.slice(0, nl), stderr: () => err });
        } catch (e) {
          reject(new Error(`bad first line ${JSON.stringify(out)}: ${e.message}`));
        }
      }
    };
    proc.stdout.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`emulator exited with ${code} before it was ready: ${err}`)));
  });
}

class Emu {
  constructor(opts = {}) {
    this.opts = opts;
    this.work = tmpDir();
    this.dataDir = path.join(this.work, 'data');
  }

  args() {
    const a = ['--data', this.dataDir];
    if (this.opts.seed) a.push('--seed', this.opts.seed);
    if (this.opts.urlTtl) a.push('--url-ttl', String(this.opts.urlTtl));
    if (this.opts.args) a.push(...this.opts.args);
    return a;
  }

  async start() {
    const { proc, urls, line, stderr } = await launch(this.args());
    this.proc = proc;
    this.stderr = stderr;
    this.line = line;
    this.urls = urls;
    this.api = urls.api;
    this.download = urls.download;
    this.storage = urls.storage;
    this.adminUrl = urls.admin;
    return this;
  }

  /** Stop with `signal`; resolves to the exit code (or the signal name if it died of it). */
  async kill(signal = 'SIGTERM') {
    const proc = this.proc;
    if (!proc) return null;
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode ?? proc.signalCode;
    proc.removeAllListeners('exit');
    const exited = new Promise((resolve) => proc.once('exit', (code, sig) => resolve(code === null ? sig : code)));
    proc.kill(signal);
    return exited;
  }

  async restart() {
    await this.kill();
    return this.start();
  }

  async stop() {
    await this.kill();
    // The emulator is quiet unless something went wrong: show it with the test output.
    const err = this.stderr && this.stderr();
    if (err) process.stderr.write(`emulator stderr:\n${err}\n`);
    fs.rmSync(this.work, { recursive: true, force: true });
  }

  async adminCall(method, sub, body) {
    const res = await fetch(`${this.adminUrl}${sub}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`admin ${method} ${sub}: ${res.status} ${text}`);
    return JSON.parse(text);
  }

  fault(rule) { return this.adminCall('POST', '/faults', rule); }
  clearFaults() { return this.adminCall('DELETE', '/faults'); }
  requests() { return this.adminCall('GET', '/requests'); }
  clearRequests() { return this.adminCall('DELETE', '/requests'); }
  state() { return this.adminCall('GET', '/state'); }
  shaping() { return this.adminCall('GET', '/shaping'); }
  shape(spec) { return this.adminCall('PUT', '/shaping', spec); }
  clearShaping() { return this.adminCall('DELETE', '/shaping'); }

  /** An API (or download) URL for a path relative to /v2. */
  url(pathRel, role = 'api') { return `${role === 'api' ? this.api : this.download}/${pathRel}`; }

  /** JSON request with the demo token unless `token` is given (null = none). */
  async call(method, pathRel, body, { token = TOKEN, role = 'api', redirect = 'manual' } = {}) {
    const headers = {};
    if (token !== null) headers['X-API-TOKEN'] = token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(this.url(pathRel, role), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), redirect,
    });
    const text = await res.text();
    let json;
    try { json = text === '' ? undefined : JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, headers: res.headers, text, json };
  }

  /** E4 only: resolves to the E4 answer ({model_version_id, filepath, presigned_url}). */
  async create(model = MODEL_PATH, body = { filename: 'demo-model.zip' }) {
    const r = await this.call('POST', `${model}/model_versions`, body);
    if (r.status !== 201) throw new Error(`E4: ${r.status} ${r.text}`);
    return r.json;
  }

  /** A file in this emulator's work directory holding `data`. */
  file(name, data) {
    const f = path.join(this.work, name);
    fs.writeFileSync(f, data);
    return f;
  }

  /** E4 + PUT (curl) + E6 of `data`; resolves to the E6 record. */
  async publish(data, { model = MODEL_PATH, description } = {}) {
    const created = await this.create(model, { filename: 'demo-model.zip', description });
    const file = this.file(`up-${created.model_version_id}`, data);
    const put = await curl(['-T', file, '-H', 'Content-Type: application/octet-stream', created.presigned_url]);
    if (put.status !== 200) throw new Error(`PUT: ${put.status} ${put.text}`);
    const fin = await this.call('PATCH', `${model}/model_versions/${created.model_version_id}`, { filepath: created.filepath });
    if (fin.status !== 200) throw new Error(`E6: ${fin.status} ${fin.text}`);
    return { ...fin.json, created, put };
  }

  /** The presigned GET that E8 redirects to. */
  async downloadUrl(model = MODEL_PATH, query = '') {
    const r = await this.call('GET', `${model}${query}`, undefined, { role: 'download' });
    if (r.status !== 302) throw new Error(`E8: ${r.status} ${r.text}`);
    return r.headers.get('location');
  }
}

async function startEmu(opts) {
  return new Emu(opts).start();
}

/**
 * Run curl with `args`; resolves to {exit, status, headers (lower-case), body (Buffer),
 * stderr}. Adds -sS, the body and header dumps and the status code.
 */
function curl(args, { timeout = 20000 } = {}) {
  const dir = tmpDir('skafos-curl-');
  const bodyFile = path.join(dir, 'body');
  const headFile = path.join(dir, 'head');
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-o', bodyFile, '-D', headFile, '-w', '%{http_code}', ...args], { timeout }, (err, stdout, stderr) => {
      const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f) : Buffer.alloc(0));
      const headers = {};
      let statusLines = [];
      for (const line of read(headFile).toString('latin1').split(/\r?\n/)) {
        if (/^HTTP\//.test(line)) statusLines.push(line);
        const m = /^([^:\s]+):\s*(.*)$/.exec(line);
        if (m) headers[m[1].toLowerCase()] = m[2];
      }
      const body = read(bodyFile);
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({
        exit: err ? (typeof err.code === 'number' ? err.code : -1) : 0,
        status: Number(stdout) || 0,
        statusLines,
        headers,
        body,
        text: body.toString('utf8'),
        stderr,
      });
    });
  });
}

/**
 * Send raw bytes on a fresh TCP connection and collect what comes back until the server
 * closes or `waitMs` passes without data.
 */
function rawRequest(hostPort, head, { body = null, waitMs = 1500 } = {}) {
  const [host, port] = hostPort.replace(/^http:\/\//, '').split(':');
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), host);
    const chunks = [];
    let timer;
    const finish = (how) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), how });
    };
    const arm = () => { clearTimeout(timer); timer = setTimeout(() => finish('timeout'), waitMs); };
    sock.on('connect', () => {
      sock.write(head);
      if (body) sock.write(body);
      arm();
    });
    sock.on('data', (c) => { chunks.push(c); arm(); });
    sock.on('end', () => finish('end'));
    sock.on('error', (e) => finish(e.code || 'error'));
  });
}

/** The `host:port` and `path?query` of a URL, for raw requests. */
function splitHttpUrl(u) {
  const m = /^http:\/\/([^/]+)(\/.*)$/.exec(u);
  return { hostPort: m[1], pathQuery: m[2] };
}

module.exports = { startEmu, curl, rawRequest, splitHttpUrl, tmpDir, TOKEN, MODEL_PATH, SERVER };
