'use strict';
// Small helpers shared by the emulator roles: timestamps, URI encoding, query parsing,
// JSON errors. Nothing here knows about HTTP servers or state.

/** Skafos-style timestamp: `2019-06-10T19:17:46` (UTC, no zone, no fraction). */
function timestamp(date = new Date()) {
  return date.toISOString().slice(0, 19);
}

/** RFC 3986 encoding of one path segment or query component, as AWS SigV4 expects. */
function escapeUri(str) {
  return encodeURIComponent(str).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** An S3 object key as a URL path: every segment escaped, slashes kept. */
function escapeKey(key) {
  return key.split('/').map(escapeUri).join('/');
}

/**
 * Parse a raw query string without treating `+` as a space (SigV4 does not).
 * Repeated keys become arrays. Throws URIError on a malformed escape.
 */
function parseQuery(raw) {
  const out = Object.create(null);
  if (!raw) return out;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    if (k in out) out[k] = [].concat(out[k], v);
    else out[k] = v;
  }
  return out;
}

/** Split `/a/b%20c/` into decoded segments ['a', 'b c']. Throws URIError on a bad escape. */
function pathSegments(rawPath) {
  return rawPath.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
}

/** Split a request URL into its raw path and raw query. */
function splitUrl(url) {
  const q = url.indexOf('?');
  return q < 0 ? { rawPath: url, rawQuery: '' } : { rawPath: url.slice(0, q), rawQuery: url.slice(q + 1) };
}

/** An error that carries the HTTP status (and for storage, the S3 error code) to answer with. */
class HttpError extends Error {
  constructor(status, message, extra = {}) {
    super(message);
    this.status = status;
    Object.assign(this, extra);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Length in characters (code points), as a user would count them. */
function charLength(s) {
  let n = 0;
  for (const _ of s) n++; // eslint-disable-line no-unused-vars
  return n;
}

module.exports = { timestamp, escapeUri, escapeKey, parseQuery, pathSegments, splitUrl, HttpError, sleep, charLength };
