'use strict';
// Receive an upload body into a file while computing its MD5.
//
// Small bodies go through a plain stream pipeline, hashed inline. Large ones are copied
// once from the socket into slots of a SharedArrayBuffer; each full slot is written to
// the file (libuv thread pool) and hashed by a worker thread at the same time, straight
// from shared memory, and is reused when both are done. The main thread then does little
// more than read the socket, so MD5 (about one core's worth at this speed) and the file
// write overlap with receiving, and nothing holds more than the slots in memory.

const crypto = require('crypto');
const fs = require('fs');
const { Transform } = require('stream');
const { pipeline } = require('stream/promises');
const { Worker } = require('worker_threads');
const { takeTokens, pieceSize } = require('./shaping');

const SLOT = 4 << 20;
const SLOTS = 8;
const OFFLOAD_FROM = 8 << 20; // smaller bodies are hashed inline
const MAX_IDLE = 2;

const WORKER_SOURCE = `
const { parentPort } = require('worker_threads');
const crypto = require('crypto');
let h = null;
let mem = null;
parentPort.on('message', (m) => {
  if (m.type === 'begin') {
    mem = new Uint8Array(m.sab);
    h = crypto.createHash('md5');
  } else if (m.type === 'data') {
    h.update(mem.subarray(m.off, m.off + m.len));
    parentPort.postMessage({ type: 'hashed', slot: m.slot });
  } else if (m.type === 'end') {
    parentPort.postMessage({ type: 'digest', hex: h.digest('hex') });
    h = null;
  }
});
`;

// Idle workers, each with its own shared slot memory.
const idle = [];

function acquire() {
  const hand = idle.pop() || { worker: new Worker(WORKER_SOURCE, { eval: true }), sab: new SharedArrayBuffer(SLOT * SLOTS) };
  hand.worker.ref(); // busy: keep the process alive until the digest arrives
  return hand;
}

/** Keep a worker for the next upload, unless it may still send messages of this one. */
function release(hand, clean) {
  hand.worker.removeAllListeners('message');
  hand.worker.removeAllListeners('error');
  if (clean && idle.length < MAX_IDLE) {
    hand.worker.unref();
    idle.push(hand);
  } else {
    hand.worker.terminate();
  }
}

/** Small bodies: a stream pipeline with the MD5 computed inline. */
async function receiveSmall(req, file, onBytes) {
  const md5 = crypto.createHash('md5');
  let bytes = 0;
  const hasher = new Transform({
    transform(chunk, _enc, cb) {
      md5.update(chunk);
      bytes += chunk.length;
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
  await pipeline(req, hasher, fs.createWriteStream(file));
  return { bytes, md5: md5.digest() };
}

/** Large bodies: shared slots, written and hashed in parallel. */
function receiveLarge(req, file, onBytes) {
  return new Promise((resolve, reject) => {
    const hand = acquire();
    const mem = Buffer.from(hand.sab);
    const free = [];
    for (let i = SLOTS - 1; i >= 0; i--) free.push(i);
    const busy = new Array(SLOTS).fill(0); // 2 while written and hashed, 0 when free
    let fd = null;
    let cur = -1; // slot being filled
    let fill = 0;
    let position = 0; // file offset of the next slot to write
    let bytes = 0;
    let stash = null; // data that arrived while every slot was busy
    let ended = false;
    let failed = null;
    let digest = null;
    let settled = false;
    const hashing = new Set(); // slots handed to the worker and not yet hashed

    const finish = (err) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      const done = () => (err ? reject(err) : resolve({ bytes, md5: digest }));
      release(hand, !err);
      if (fd === null) return done();
      fs.close(fd, (closeErr) => {
        if (!err && closeErr) err = closeErr;
        done();
      });
    };
    const fail = (err) => {
      if (failed) return;
      failed = err;
      // Wait for writes still in flight before closing the file.
      if (busy.every((b) => b === 0)) finish(err);
    };

    const maybeDone = () => {
      if (failed) {
        if (busy.every((b) => b === 0)) finish(failed);
        return;
      }
      if (ended && stash === null && cur === -1 && busy.every((b) => b === 0) && digest === null) {
        hand.worker.postMessage({ type: 'end' });
        digest = 'pending';
      }
    };

    // After 'end', the last partly filled slot goes out once no data waits for a slot.
    const flushIfEnded = () => {
      if (ended && stash === null && cur !== -1 && !failed) dispatch();
    };

    const slotDone = (slot) => {
      if (--busy[slot] === 0) {
        free.push(slot);
        if (stash && !failed) {
          const c = stash;
          stash = null;
          if (take(c)) req.resume();
          flushIfEnded();
        }
        maybeDone();
      }
    };

    const dispatch = () => {
      const slot = cur;
      const len = fill;
      cur = -1;
      fill = 0;
      busy[slot] = 2;
      const off = slot * SLOT;
      fs.write(fd, mem, off, len, position, (err) => {
        if (err) fail(err);
        slotDone(slot);
      });
      position += len;
      hashing.add(slot);
      hand.worker.postMessage({ type: 'data', slot, off, len });
    };

    // Copy a chunk into slots; false (with the rest stashed) when every slot is busy.
    const take = (chunk) => {
      let at = 0;
      while (at < chunk.length) {
        if (cur === -1) {
          if (free.length === 0) {
            stash = at === 0 ? chunk : chunk.subarray(at);
            return false;
          }
          cur = free.pop();
        }
        const n = Math.min(SLOT - fill, chunk.length - at);
        chunk.copy(mem, cur * SLOT + fill, at, at + n);
        fill += n;
        at += n;
        if (fill === SLOT) dispatch();
      }
      return true;
    };

    const onData = (chunk) => {
      if (failed) return;
      bytes += chunk.length;
      onBytes(chunk.length);
      if (!take(chunk)) req.pause();
    };

    hand.worker.on('message', (m) => {
      if (m.type === 'hashed') {
        hashing.delete(m.slot);
        slotDone(m.slot);
      }
      else if (m.type === 'digest') {
        digest = Buffer.from(m.hex, 'hex');
        finish(null);
      }
    });
    hand.worker.on('error', (e) => {
      fail(e);
      // No acknowledgement will come for what the worker held.
      for (const slot of [...hashing]) {
        hashing.delete(slot);
        slotDone(slot);
      }
    });

    fs.open(file, 'w', 0o644, (err, opened) => {
      if (err) return finish(err);
      fd = opened;
      hand.worker.postMessage({ type: 'begin', sab: hand.sab });
      req.on('data', onData);
      req.on('end', () => {
        ended = true;
        flushIfEnded();
        maybeDone();
      });
      req.on('error', (e) => fail(e));
      req.on('aborted', () => fail(Object.assign(new Error('request aborted'), { code: 'ECONNRESET' })));
      req.on('close', () => { if (!ended) fail(Object.assign(new Error('connection closed'), { code: 'ECONNRESET' })); });
    });
  });
}

/**
 * The body of `req` read no faster than `rate` bytes per second on its connection (the
 * bucket of shaping.js, shared with the answers on that socket): what is not yet let
 * through stays in the socket, so TCP holds the sender back as a slow link would.
 */
function shaped(req, rate) {
  const socket = req.socket;
  const step = pieceSize(rate);
  const out = new Transform({
    transform(chunk, _enc, cb) {
      (async () => {
        for (let off = 0; off < chunk.length; off += step) {
          const piece = chunk.subarray(off, off + step);
          await takeTokens(socket, rate, piece.length);
          this.push(piece);
        }
      })().then(() => cb(), cb);
    },
  });
  req.on('aborted', () => out.destroy(Object.assign(new Error('request aborted'), { code: 'ECONNRESET' })));
  req.on('error', (e) => out.destroy(e));
  req.pipe(out);
  return out;
}

/**
 * Write the body of `req` to `file`; resolves to {bytes, md5 (Buffer)}. `length` is the
 * announced Content-Length; `onBytes(n)` is called as data arrives; `rate` (bytes per
 * second, 0 = none) shapes the upload as the answers of the same host are.
 */
function receive(req, file, length, onBytes = () => {}, rate = 0) {
  const body = rate > 0 ? shaped(req, rate) : req;
  return length < OFFLOAD_FROM ? receiveSmall(body, file, onBytes) : receiveLarge(body, file, onBytes);
}

module.exports = { receive };
