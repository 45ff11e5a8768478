'use strict';
// AWS Signature V4 query-string presigning and checking for the storage host. URLs are made
// by the AWS SDK's S3 presigner; arriving requests are checked by recomputing the signature
// with the SDK's SigV4 signer over what actually arrived (method, path, query, signed headers).

const crypto = require('crypto');
const { S3RequestPresigner } = require('@aws-sdk/s3-request-presigner');
const { SignatureV4 } = require('@smithy/signature-v4');
const { HttpRequest } = require('@smithy/protocol-http');
const { Hash } = require('@smithy/hash-node');
const { escapeUri, escapeKey } = require('./util');

// Fixed, fake values: nothing here is a secret.
const REGION = 'us-east-1';
const BUCKET = 'skafos-emulator';
const CREDENTIALS = Object.freeze({
  accessKeyId: 'AKIAEMULATOR00000000',
  secretAccessKey: 'emulator/secret/key/not/a/real/one/000000',
});
const MAX_TTL = 7 * 24 * 3600;
const CLOCK_SKEW = 15 * 60;

const sha256 = Hash.bind(null, 'sha256');

const SIGV4_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'];

class Signer {
  constructor() {
    // No checksum parameters: the presigner alone adds none (the S3 client's flexible
    // checksum middleware is what would), so a plain client can satisfy every URL.
    this.presigner = new S3RequestPresigner({ credentials: CREDENTIALS, region: REGION, sha256 });
    this.verifier = new SignatureV4({
      credentials: CREDENTIALS, region: REGION, service: 's3', sha256, uriEscapePath: false, applyChecksum: false,
    });
  }

  /**
   * A presigned URL for `method` on object `key` at the storage host `host` (`127.0.0.1:R`).
   * `signingDate` in the past makes an already expired URL.
   */
  async presign(method, host, key, ttl, signingDate = new Date()) {
    const [hostname, port] = host.split(':');
    const request = new HttpRequest({
      method,
      protocol: 'http:',
      hostname,
      port: Number(port),
      path: `/${BUCKET}/${escapeKey(key)}`,
      headers: { host },
    });
    const signed = await this.presigner.presign(request, { expiresIn: ttl, signingDate });
    const query = Object.keys(signed.query).sort()
      .map((k) => `${escapeUri(k)}=${escapeUri(signed.query[k])}`).join('&');
    return `http://${host}${signed.path}?${query}`;
  }

  /**
   * Check a presigned request. Returns null when it is good, or an S3 error description
   * `{status, code, message, extra}`.
   */
  async verify({ method, rawPath, query, headers, now = new Date() }) {
    const has = (k) => query[k] !== undefined;
    if (headers.authorization !== undefined && has('X-Amz-Algorithm')) {
      return err(400, 'InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified');
    }
    if (!SIGV4_PARAMS.some(has)) {
      return err(403, 'AccessDenied', 'Access Denied');
    }
    for (const k of SIGV4_PARAMS) {
      if (!has(k)) return err(400, 'AuthorizationQueryParametersError', `Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.`);
      if (typeof query[k] !== 'string') return err(400, 'AuthorizationQueryParametersError', `${k} appears more than once.`);
    }
    if (query['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256') {
      return err(400, 'AuthorizationQueryParametersError', 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
    }
    const cred = query['X-Amz-Credential'].split('/');
    if (cred.length !== 5 || cred[4] !== 'aws4_request' || cred[3] !== 's3') {
      return err(400, 'AuthorizationQueryParametersError', 'Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
    }
    if (cred[0] !== CREDENTIALS.accessKeyId) {
      return err(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', { AWSAccessKeyId: cred[0] });
    }
    if (cred[2] !== REGION) {
      return err(400, 'AuthorizationQueryParametersError', `Error parsing the X-Amz-Credential parameter; the region '${cred[2]}' is wrong; expecting '${REGION}'`, { Region: REGION });
    }
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(query['X-Amz-Date']);
    if (!m) return err(400, 'AuthorizationQueryParametersError', 'X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"');
    const signingDate = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
    if (cred[1] !== query['X-Amz-Date'].slice(0, 8)) {
      return err(400, 'AuthorizationQueryParametersError', `Error parsing the X-Amz-Credential parameter; incorrect date format "${cred[1]}". This date in the credential must be in the format "yyyyMMdd".`);
    }
    const expiresText = query['X-Amz-Expires'];
    const expires = /^\d+$/.test(expiresText) ? Number(expiresText) : NaN;
    if (!(expires >= 1 && expires <= MAX_TTL)) {
      return err(400, 'AuthorizationQueryParametersError', 'X-Amz-Expires must be non-negative and less than 604800 seconds');
    }
    const signedHeaders = query['X-Amz-SignedHeaders'].split(';');
    if (!signedHeaders.includes('host')) {
      return err(400, 'AuthorizationQueryParametersError', 'Query-string authentication requires the host header to be signed');
    }

    // Rebuild the request exactly as it arrived and sign it again.
    const q = {};
    const reqHeaders = {};
    for (const [k, v] of Object.entries(query)) {
      if (k === 'X-Amz-Signature') continue;
      // The payload hash travels as a query parameter; the signer reads it from a header.
      if (k.toLowerCase() === 'x-amz-content-sha256') reqHeaders[k] = v;
      else q[k] = v;
    }
    const unhoistable = new Set();
    for (const h of signedHeaders) {
      const v = headers[h];
      if (v === undefined) continue; // a signed header that did not arrive: the signature will not match
      reqHeaders[h] = Array.isArray(v) ? v.join(',') : v;
      if (h.startsWith('x-amz-')) unhoistable.add(h);
    }
    const request = new HttpRequest({ method, protocol: 'http:', hostname: 'storage', path: rawPath, query: q, headers: reqHeaders });
    const expected = await this.verifier.presign(request, {
      signingDate,
      expiresIn: expires,
      signableHeaders: new Set(signedHeaders),
      unhoistableHeaders: unhoistable,
    });
    const want = Buffer.from(String(expected.query['X-Amz-Signature']));
    const got = Buffer.from(query['X-Amz-Signature']);
    if (want.length !== got.length || !crypto.timingSafeEqual(want, got) ||
        expected.query['X-Amz-SignedHeaders'] !== query['X-Amz-SignedHeaders']) {
      return err(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', {
        AWSAccessKeyId: cred[0], SignatureProvided: query['X-Amz-Signature'],
      });
    }
    const nowS = Math.floor(now.getTime() / 1000);
    const signedS = Math.floor(signingDate.getTime() / 1000);
    if (nowS > signedS + expires) {
      return err(403, 'AccessDenied', 'Request has expired', {
        'X-Amz-Expires': String(expires),
        Expires: new Date((signedS + expires) * 1000).toISOString(),
        ServerTime: new Date(nowS * 1000).toISOString(),
      });
    }
    if (signedS > nowS + CLOCK_SKEW) {
      return err(403, 'AccessDenied', 'Request is not valid yet');
    }
    return null;
  }
}

function err(status, code, message, extra = {}) {
  return { status, code, message, extra };
}

module.exports = { Signer, BUCKET, REGION, CREDENTIALS };
