'use strict';
// One request as the emulator sees it: its log entry, the fault chosen for it, and the
// only ways a handler reads a body or sends an answer, so faults and byte counts apply
// the same way to every role.

const { pipeline } = require('stream/promises');
const { splitUrl, parseQuery, HttpError, sleep } = require('./util');
const { takeTokens, pieceSize } = require('./shaping');

/** Tear down the connection: TCP RST for 'reset', an orderly close otherwise. */
function cut(socket, hard) {
  if (!socket || socket.destroyed) return;
  if (hard && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

class Context {
  constructor(emu, role, req, res, expectContinue) {
    this.emu = emu;
    this.role = role;
    this.req = req;
    this.res = res;
    this.method = req.method;
    this.expectContinue = expectContinue;
    this.continued = false;
    this.bodyRead = false;
    this.fault = null;
    const { rawPath, rawQuery } = splitUrl(req.url);
    this.rawPath = rawPath;
    this.rawQuery = rawQuery;
    try {
      this.decodedPath = decodeURIComponent(rawPath);
    } catch {
      this.decodedPath = null;
    }
    let query;
    try {
      query = parseQuery(rawQuery);
    } catch {
      query = { _raw: rawQuery };
      this.badQuery = true;
    }
    this.query = query;
    this.entry = {
      time: new Date().toISOString(),
      method: req.method,
      path: rawPath,
      query,
      headers: { ...req.headers },
      status: null,
      bytes_in: 0,
      bytes_out: 0,
    };
    res.on('finish', () => { this.entry.status = res.statusCode; });
    res.on('close', () => {
      this.entry.end = new Date().toISOString();
      if (!res.writableFinished) {
        this.entry.status = res.headersSent ? res.statusCode : 0;
        this.entry.error = this.entry.error || 'connection closed before the response was complete';
      }
    });
  }

  /** The first arrival-time fault matching this request, if any (used up by this call). */
  takeFault() {
    return this.emu.faults.take(this.role, this.method, this.rawPath, this.decodedPath, null, this.req.headers.range);
  }

  /** A lazily applied fault (expire_next_url, etag), used up only when the handler asks. */
  takeLazyFault(type) {
    return this.emu.faults.take(this.role, this.method, this.rawPath, this.decodedPath, type, this.req.headers.range);
  }

  /** True when the client announced a body that nobody has read. */
  hasUnreadBody() {
    if (this.bodyRead) return false;
    const h = this.req.headers;
    return (h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'] !== undefined;
  }

  /** Tell a client waiting on `Expect: 100-continue` to send its body. */
  allowBody() {
    if (this.expectContinue && !this.continued) {
      this.continued = true;
      this.res.writeContinue();
    }
  }

  /** Read the whole body (small bodies only: JSON documents). */
  async readBody(limit = 1 << 20) {
    this.allowBody();
    this.bodyRead = true;
    const chunks = [];
    let n = 0;
    for await (const c of this.req) {
      n += c.length;
      this.entry.bytes_in = n;
      if (n > limit) throw new HttpError(413, `request body over ${limit} bytes`);
      chunks.push(c);
    }
    return Buffer.concat(chunks);
  }

  async readJson() {
    const raw = await this.readBody();
    if (raw.length === 0) return {};
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, 'request body is not valid JSON');
    }
  }

  /**
   * Apply a request-direction reset: read (and discard) the body until `after_bytes`
   * bytes have arrived or it ends, then reset the connection. No handler runs.
   */
  async resetRequest(afterBytes) {
    this.entry.error = `reset after ${afterBytes} request bytes (fault)`;
    if (afterBytes === 0 || !this.hasUnreadBody()) {
      cut(this.req.socket, true);
      return;
    }
    this.allowBody();
    this.bodyRead = true;
    await new Promise((resolve) => {
      const onData = (c) => {
        this.entry.bytes_in += c.length;
        if (this.entry.bytes_in >= afterBytes) done();
      };
      const done = () => {
        this.req.off('data', onData);
        cut(this.req.socket, true);
        resolve();
      };
      this.req.on('data', onData);
      this.req.on('end', done);
      this.req.on('error', done);
    });
  }

  /**
   * Send a response. `body` is a Buffer, a string, a Readable, or null. Content-Length
   * must be in `headers` for a Readable. Response-direction faults apply here.
   */
  async send(status, headers, body) {
    const res = this.res;
    if (res.headersSent || res.destroyed) return;
    if (typeof body === 'string') body = Buffer.from(body);
    if (Buffer.isBuffer(body) && headers['Content-Length'] === undefined) headers['Content-Length'] = body.length;
    if (body === null && headers['Content-Length'] === undefined && status !== 304) headers['Content-Length'] = 0;
    // An announced body that was never read would otherwise hold the connection.
    if (this.hasUnreadBody()) headers.Connection = 'close';
    // Link shaping: the first byte of every answer waits, then the body keeps to the rate.
    const shape = this.emu.shaping.of(this.role);
    if (shape && shape.first_byte_ms > 0) {
      await sleep(shape.first_byte_ms);
      if (res.headersSent || res.destroyed) {
        if (body && typeof body.destroy === 'function' && !Buffer.isBuffer(body)) body.destroy();
        return;
      }
    }
    const rate = shape ? shape.rate : 0;
    res.writeHead(status, headers);
    const isHead = this.method === 'HEAD';
    const fault = this.fault && ['reset', 'stall', 'truncate', 'trickle'].includes(this.fault.type) &&
      !(this.fault.type === 'reset' && this.fault.direction === 'request') ? this.fault : null;

    if (!fault && !(rate > 0 && !isHead && body !== null)) {
      if (isHead || body === null) {
        if (body && typeof body.destroy === 'function' && !Buffer.isBuffer(body)) body.destroy();
        res.end();
      } else if (Buffer.isBuffer(body)) {
        this.entry.bytes_out = body.length;
        res.end(body);
      } else {
        body.on('data', (c) => { this.entry.bytes_out += c.length; });
        try {
          await pipeline(body, res);
        } catch (e) {
          this.entry.error = `response stream failed: ${e.message}`;
          cut(res.socket, false);
        }
      }
      return;
    }
    await this.sendFaulted(fault, isHead ? null : body, rate);
  }

  /**
   * Sends the body chunk by chunk, applying a response-direction fault (may be null) and
   * the connection's rate limit (bytes per second, 0 = none).
   */
  async sendFaulted(fault, body, rate = 0) {
    const res = this.res;
    const writeOne = (buf) => new Promise((resolve, reject) => {
      if (res.destroyed) return reject(new Error('connection closed'));
      res.write(buf, (err) => (err ? reject(err) : resolve()));
    });
    const write = async (buf) => {
      if (!(rate > 0)) return writeOne(buf);
      const step = pieceSize(rate);
      for (let off = 0; off < buf.length; off += step) {
        const piece = buf.subarray(off, off + step);
        if (res.destroyed || !res.socket) throw new Error('connection closed');
        await takeTokens(res.socket, rate, piece.length);
        await writeOne(piece);
      }
    };
    const source = body === null ? [] : Buffer.isBuffer(body) ? [body] : body;
    if (!fault) fault = { type: 'none', after_bytes: Infinity };
    const limit = fault.after_bytes;
    let triggered = false;
    res.flushHeaders();
    try {
      for await (let chunk of source) {
        const sent = this.entry.bytes_out;
        if (!triggered && sent + chunk.length >= limit) {
          const head = chunk.subarray(0, limit - sent);
          if (head.length) {
            await write(head);
            this.entry.bytes_out += head.length;
          }
          triggered = true;
          if (fault.type === 'trickle') {
            chunk = chunk.subarray(head.length);
          } else {
            if (fault.type !== 'stall') break;
            await sleep(fault.ms);
            chunk = chunk.subarray(head.length);
          }
        }
        if (triggered && fault.type === 'trickle') {
          // the rest at bytes_per_second, a tenth of it every 100 ms
          const step = Math.max(1, Math.floor(fault.bytes_per_second / 10));
          for (let off = 0; off < chunk.length; off += step) {
            if (res.destroyed) throw new Error('connection closed');
            const piece = chunk.subarray(off, off + step);
            await write(piece);
            this.entry.bytes_out += piece.length;
            await sleep(Math.max(1, Math.round((piece.length * 1000) / fault.bytes_per_second)));
          }
          continue;
        }
        if (chunk.length) {
          await write(chunk);
          this.entry.bytes_out += chunk.length;
        }
      }
    } catch (e) {
      this.entry.error = `response failed: ${e.message}`;
      if (body && typeof body.destroy === 'function' && !Buffer.isBuffer(body)) body.destroy();
      return;
    }
    if (body && typeof body.destroy === 'function' && !Buffer.isBuffer(body)) body.destroy();
    if (fault.type === 'stall' || fault.type === 'trickle' || fault.type === 'none') {
      res.end();
      return;
    }
    // truncate and reset: the connection goes away after the bytes allowed.
    this.entry.error = `${fault.type} after ${this.entry.bytes_out} response bytes (fault)`;
    await new Promise((resolve) => res.write('', resolve)); // let queued bytes reach the socket
    cut(res.socket, fault.type === 'reset');
  }
}

module.exports = { Context, cut };
