'use strict';
// The storage host: an S3 bucket reached only through presigned URLs. PUT streams the body
// to a temporary file while computing its MD5, then renames it into place; GET and HEAD
// stream from disk with Range/If-Range. Errors are S3 XML documents.

const fs = require('fs');
const crypto = require('crypto');
const { receive } = require('./receive');
const { BUCKET } = require('./sigv4');
const { pathSegments } = require('./util');

const MAX_OBJECT = 5 * 1024 * 1024 * 1024; // a single PUT takes at most 5 GiB
const CHUNK = 1 << 20;

const STATUS_CODES = {
  400: ['BadRequest', 'Bad Request'],
  403: ['AccessDenied', 'Access Denied'],
  404: ['NoSuchKey', 'The specified key does not exist.'],
  405: ['MethodNotAllowed', 'The specified method is not allowed against this resource.'],
  409: ['OperationAborted', 'A conflicting conditional operation is currently in progress against this resource. Please try again.'],
  411: ['MissingContentLength', 'You must provide the Content-Length HTTP header.'],
  412: ['PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'],
  416: ['InvalidRange', 'The requested range is not satisfiable'],
  500: ['InternalError', 'We encountered an internal error. Please try again.'],
  501: ['NotImplemented', 'A header you provided implies functionality that is not implemented'],
  503: ['SlowDown', 'Please reduce your request rate.'],
};

function xmlEscape(s) {
  return String(s).replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' }[c]));
}

function errorXml(code, message, extra = {}) {
  const requestId = crypto.randomBytes(8).toString('hex').toUpperCase();
  let xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message>`;
  for (const [k, v] of Object.entries(extra)) xml += `<${k}>${xmlEscape(v)}</${k}>`;
  xml += `<RequestId>${requestId}</RequestId><HostId>${crypto.randomBytes(24).toString('base64')}</HostId></Error>`;
  return { xml, requestId };
}

/** The default S3 error for a status, for injected faults. */
function defaultError(status) {
  const known = STATUS_CODES[status];
  if (known) return { code: known[0], message: known[1] };
  return status >= 500 ? { code: 'InternalError', message: STATUS_CODES[500][1] } : { code: 'BadRequest', message: 'Bad Request' };
}

async function sendError(ctx, status, code, message, extra = {}, headers = {}) {
  const { xml, requestId } = errorXml(code, message, extra);
  const h = { 'Content-Type': 'application/xml', 'x-amz-request-id': requestId, Server: 'AmazonS3', ...headers };
  // A HEAD error carries no body, as on S3.
  await ctx.send(status, h, ctx.method === 'HEAD' ? null : xml);
}

/** Parse a Range header for an object of `size` bytes: null (ignore), 'unsatisfiable', or {start, end}. */
function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // S3 ignores what it cannot parse, and multiple ranges
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  let end = m[2] === '' ? size - 1 : Number(m[2]);
  if (m[2] !== '' && end < start) return null;
  if (start >= size) return 'unsatisfiable';
  if (end >= size) end = size - 1;
  return { start, end };
}

class Storage {
  constructor(emu) {
    this.emu = emu;
  }

  async handle(ctx) {
    if (ctx.badQuery) return sendError(ctx, 400, 'InvalidArgument', 'The query string is malformed.');
    const auth = await this.emu.signer.verify({
      method: ctx.method, rawPath: ctx.rawPath, query: ctx.query, headers: ctx.req.headers,
    });
    if (auth) return sendError(ctx, auth.status, auth.code, auth.message, auth.extra);
    let segs;
    try {
      segs = pathSegments(ctx.rawPath);
    } catch {
      return sendError(ctx, 400, 'InvalidURI', "Couldn't parse the specified URI.");
    }
    if (segs.length === 0) return sendError(ctx, 405, 'MethodNotAllowed', STATUS_CODES[405][1]);
    if (segs[0] !== BUCKET) return sendError(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: segs[0] });
    // The key is everything after the bucket, as it was escaped segment by segment.
    const key = ctx.rawPath.replace(/^\/+[^/]*\//, '').split('/').map((s) => decodeURIComponent(s)).join('/');
    if (key === '') return sendError(ctx, 405, 'MethodNotAllowed', STATUS_CODES[405][1]);
    if (Buffer.byteLength(key) > 1024) return sendError(ctx, 400, 'KeyTooLongError', 'Your key is too long');
    switch (ctx.method) {
      case 'PUT': return this.put(ctx, key);
      case 'GET':
      case 'HEAD': return this.get(ctx, key);
      default: return sendError(ctx, 405, 'MethodNotAllowed', STATUS_CODES[405][1], { Method: ctx.method, ResourceType: 'OBJECT' });
    }
  }

  async put(ctx, key) {
    const h = ctx.req.headers;
    if (h['transfer-encoding'] !== undefined || h['content-length'] === undefined) {
      return sendError(ctx, 411, 'MissingContentLength', STATUS_CODES[411][1]);
    }
    const length = Number(h['content-length']);
    if (length > MAX_OBJECT) {
      return sendError(ctx, 400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
        ProposedSize: h['content-length'], MaxSizeAllowed: String(MAX_OBJECT),
      });
    }
    let wantMd5 = null;
    if (h['content-md5'] !== undefined) {
      wantMd5 = Buffer.from(h['content-md5'], 'base64');
      if (wantMd5.length !== 16) return sendError(ctx, 400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
    }

    ctx.allowBody();
    ctx.bodyRead = true;
    const store = this.emu.store;
    const tmp = store.tmpPath();
    const entry = ctx.entry;
    let digest;
    try {
      const shape = this.emu.shaping.of(ctx.role);
      ({ md5: digest } = await receive(ctx.req, tmp, length, (n) => { entry.bytes_in += n; }, shape ? shape.rate : 0));
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      entry.error = `upload aborted after ${entry.bytes_in} bytes: ${e.code || e.message}`;
      return sendError(ctx, 400, 'IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header');
    }
    if (entry.bytes_in !== length) {
      fs.rmSync(tmp, { force: true });
      return sendError(ctx, 400, 'IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header');
    }
    if (wantMd5 && !digest.equals(wantMd5)) {
      fs.rmSync(tmp, { force: true });
      return sendError(ctx, 400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.', {
        ExpectedDigest: h['content-md5'], CalculatedDigest: digest.toString('base64'),
      });
    }
    const etag = `"${digest.toString('hex')}"`;
    store.commitObject(key, tmp, {
      size: length,
      etag,
      content_type: h['content-type'] || 'binary/octet-stream',
      last_modified: new Date().toUTCString(),
    });
    const wrong = ctx.takeLazyFault('etag');
    await ctx.send(200, {
      ETag: wrong ? wrong.value : etag,
      'x-amz-request-id': crypto.randomBytes(8).toString('hex').toUpperCase(),
      Server: 'AmazonS3',
    }, null);
  }

  async get(ctx, key) {
    const obj = this.emu.store.getObject(key);
    if (!obj) return sendError(ctx, 404, 'NoSuchKey', STATUS_CODES[404][1], { Key: key });
    const file = `${this.emu.store.objectsDir}/${obj.file}`;
    let fd;
    try {
      fd = await fs.promises.open(file, 'r');
    } catch (e) {
      return sendError(ctx, 500, 'InternalError', `object body missing on disk: ${e.code}`);
    }
    let handedOver = false;
    try {
      const h = ctx.req.headers;
      const base = {
        'Accept-Ranges': 'bytes',
        ETag: obj.etag,
        'Last-Modified': obj.last_modified,
        'x-amz-request-id': crypto.randomBytes(8).toString('hex').toUpperCase(),
        Server: 'AmazonS3',
      };
      if (h['if-match'] !== undefined && !etagListHas(h['if-match'], obj.etag)) {
        return sendError(ctx, 412, 'PreconditionFailed', STATUS_CODES[412][1], { Condition: 'If-Match' });
      }
      if (h['if-none-match'] !== undefined && etagListHas(h['if-none-match'], obj.etag)) {
        return ctx.send(304, base, null);
      }
      const size = obj.size;
      // a server that knows nothing of ranges: the whole object, and no Accept-Ranges
      const noRanges = ctx.method === 'GET' && ctx.takeLazyFault('ignore_range');
      if (noRanges) delete base['Accept-Ranges'];
      let range = h.range !== undefined && !noRanges ? parseRange(h.range, size) : null;
      if (range !== null && h['if-range'] !== undefined && !ifRangeHolds(h['if-range'], obj)) range = null;
      if (range === 'unsatisfiable') {
        return sendError(ctx, 416, 'InvalidRange', STATUS_CODES[416][1], { RangeRequested: h.range, ActualObjectSize: String(size) }, {
          'Content-Range': `bytes */${size}`,
        });
      }
      const headers = { ...base, 'Content-Type': obj.content_type };
      let status = 200;
      let start = 0;
      let end = size - 1;
      if (range) {
        status = 206;
        ({ start, end } = range);
        headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
      }
      headers['Content-Length'] = end - start + 1;
      if (ctx.method === 'HEAD' || size === 0) return ctx.send(status, headers, null);
      const stream = fd.createReadStream({ start, end, highWaterMark: CHUNK, autoClose: true });
      handedOver = true;
      return ctx.send(status, headers, stream);
    } finally {
      if (!handedOver) await fd.close();
    }
  }
}

function etagListHas(header, etag) {
  if (header.trim() === '*') return true;
  return header.split(',').map((s) => s.trim().replace(/^W\//, '')).includes(etag);
}

/** If-Range holds when it names the current ETag (strong) or the exact Last-Modified date. */
function ifRangeHolds(value, obj) {
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return v === obj.etag;
  const t = Date.parse(v);
  return !Number.isNaN(t) && t === Date.parse(obj.last_modified);
}

module.exports = { Storage, sendError, defaultError, parseRange };
