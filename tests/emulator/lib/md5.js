'use strict';
// MD5 of an upload computed while it streams. Large bodies are hashed on a worker thread so
// the main thread only moves bytes from the socket to the file: hashing on the main thread
// would cap a PUT near the MD5 speed of one core minus the cost of reading the socket.

const crypto = require('crypto');
const { Transform } = require('stream');
const { Worker } = require('worker_threads');

const BATCH = 1 << 20; // bytes handed to the worker per message
const MAX_IN_FLIGHT = 64 << 20; // bytes the worker may lag behind before the stream waits
const OFFLOAD_FROM = 8 << 20; // smaller bodies are hashed inline
const MAX_IDLE = 2;

const WORKER_SOURCE = `
const { parentPort } = require('worker_threads');
const crypto = require('crypto');
let h = crypto.createHash('md5');
parentPort.on('message', (m) => {
  if (m.type === 'data') {
    h.update(new Uint8Array(m.buf));
    parentPort.postMessage({ type: 'ack', n: m.buf.byteLength });
  } else if (m.type === 'end') {
    parentPort.postMessage({ type: 'digest', hex: h.digest('hex') });
    h = crypto.createHash('md5');
  }
});
`;

const idle = [];

function acquire() {
  const w = idle.pop() || new Worker(WORKER_SOURCE, { eval: true });
  w.ref(); // busy: keeps the process alive until the digest arrives
  return w;
}

/** Keep a worker for the next upload, unless it may still send messages of this one. */
function release(w, clean) {
  w.removeAllListeners('message');
  w.removeAllListeners('error');
  if (clean && idle.length < MAX_IDLE) {
    w.unref();
    idle.push(w);
  } else {
    w.terminate();
  }
}

/**
 * A pass-through stream that hashes what flows through it. `expected` is the announced
 * length and decides whether a worker is used. After 'finish', `digest()` resolves to the
 * MD5 as a Buffer.
 */
class Md5Stream extends Transform {
  constructor(expected) {
    super({ highWaterMark: BATCH });
    this.bytes = 0;
    this.result = null;
    if (expected < OFFLOAD_FROM) {
      this.hash = crypto.createHash('md5');
      return;
    }
    this.worker = acquire();
    this.pending = [];
    this.pendingBytes = 0;
    this.inFlight = 0;
    this.waiting = null; // callback parked until the worker catches up
    this.done = null;
    this.failed = null;
    this.worker.on('message', (m) => {
      if (m.type === 'ack') {
        this.inFlight -= m.n;
        if (this.waiting && this.inFlight <= MAX_IN_FLIGHT) {
          const cb = this.waiting;
          this.waiting = null;
          cb();
        }
      } else if (m.type === 'digest') {
        const w = this.worker;
        this.worker = null;
        release(w, true);
        this.done(Buffer.from(m.hex, 'hex'));
      }
    });
    this.worker.on('error', (e) => {
      this.failed = e;
      this.worker = null;
      this.destroy(e);
    });
  }

  post() {
    const buf = this.pending.length === 1 ? Buffer.from(this.pending[0]) : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    // `buf` is a fresh copy that nobody else holds: hand its memory over without copying.
    const ab = buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength
      ? buf.buffer : buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    this.inFlight += ab.byteLength;
    this.worker.postMessage({ type: 'data', buf: ab }, [ab]);
  }

  _transform(chunk, _enc, cb) {
    this.bytes += chunk.length;
    if (this.hash) {
      this.hash.update(chunk);
      return cb(null, chunk);
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.push(chunk);
    if (this.pendingBytes >= BATCH) this.post();
    if (this.inFlight > MAX_IN_FLIGHT) this.waiting = cb;
    else cb();
  }

  _flush(cb) {
    if (this.hash) {
      this.result = Promise.resolve(this.hash.digest());
      return cb();
    }
    if (this.pendingBytes > 0) this.post();
    this.result = new Promise((resolve) => { this.done = resolve; });
    this.worker.postMessage({ type: 'end' });
    cb();
  }

  _destroy(err, cb) {
    // autoDestroy runs right after a normal end: the worker still owes the digest then.
    if (this.worker && (err || !this.done)) {
      const w = this.worker;
      this.worker = null;
      release(w, false);
    }
    cb(err);
  }

  /** The MD5 of everything that passed, once the stream has finished. */
  digest() {
    return this.result;
  }
}

module.exports = { Md5Stream };
