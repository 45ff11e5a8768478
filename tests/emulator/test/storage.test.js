'use strict';
// The storage host: SigV4 presigned URLs checked on arrival, S3 PUT/GET semantics, S3 XML errors.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { startEmu, curl, rawRequest, splitHttpUrl, MODEL_PATH } = require('../test-support/helpers');

const xmlCode = (text) => (/<Code>([^<]*)<\/Code>/.exec(text) || [])[1];
const xmlMessage = (text) => (/<Message>([^<]*)<\/Message>/.exec(text) || [])[1];

describe('storage host', () => {
  let emu;
  const data = crypto.randomBytes(100000);
  let getUrl;
  let etag;

  before(async () => {
    emu = await startEmu();
    const v = await emu.publish(data);
    etag = v.put.headers.etag;
    getUrl = await emu.downloadUrl(MODEL_PATH, `?version=${v.version}`);
  });
  after(async () => { await emu.stop(); });

  it('answers a PUT with exactly 200, an empty body and the MD5 as ETag', async () => {
    const c = await emu.create();
    const body = Buffer.from('hello storage');
    const put = await curl(['-T', emu.file('p', body), '-H', 'Content-Type: application/octet-stream', c.presigned_url]);
    assert.equal(put.status, 200);
    assert.equal(put.body.length, 0);
    assert.equal(put.headers['content-length'], '0');
    assert.equal(put.headers.etag, `"${crypto.createHash('md5').update(body).digest('hex')}"`);
  });

  it('serves GET with Content-Length, ETag, Last-Modified and the stored Content-Type', async () => {
    const r = await curl([getUrl]);
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(data));
    assert.equal(r.headers['content-length'], String(data.length));
    assert.equal(r.headers.etag, etag);
    assert.ok(!Number.isNaN(Date.parse(r.headers['last-modified'])));
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.equal(r.headers['accept-ranges'], 'bytes');
  });

  it('serves Range requests (206) and refuses unsatisfiable ones (416)', async () => {
    const r = await curl(['-H', 'Range: bytes=10-19', getUrl]);
    assert.equal(r.status, 206);
    assert.ok(r.body.equals(data.subarray(10, 20)));
    assert.equal(r.headers['content-range'], `bytes 10-19/${data.length}`);
    assert.equal(r.headers['content-length'], '10');
    const open = await curl(['-H', `Range: bytes=${data.length - 5}-`, getUrl]);
    assert.equal(open.status, 206);
    assert.ok(open.body.equals(data.subarray(data.length - 5)));
    const suffix = await curl(['-H', 'Range: bytes=-7', getUrl]);
    assert.ok(suffix.body.equals(data.subarray(data.length - 7)));
    const bad = await curl(['-H', `Range: bytes=${data.length}-`, getUrl]);
    assert.equal(bad.status, 416);
    assert.equal(xmlCode(bad.text), 'InvalidRange');
    assert.equal(bad.headers['content-range'], `bytes */${data.length}`);
  });

  it('honours If-Range only while the ETag matches', async () => {
    const same = await curl(['-H', 'Range: bytes=100-', '-H', `If-Range: ${etag}`, getUrl]);
    assert.equal(same.status, 206);
    assert.ok(same.body.equals(data.subarray(100)));
    const changed = await curl(['-H', 'Range: bytes=100-', '-H', 'If-Range: "0123456789abcdef0123456789abcdef"', getUrl]);
    assert.equal(changed.status, 200);
    assert.ok(changed.body.equals(data));
    const resumed = await curl(['-C', '500', getUrl]);
    assert.equal(resumed.status, 206);
    assert.ok(resumed.body.equals(data.subarray(500)));
  });

  it('answers HEAD with headers and no body, and needs a HEAD signature', async () => {
    const { url } = await emu.adminCall('POST', '/presign', { method: 'HEAD', key: `demo-org/demo-app/demo-model/1/demo-model.zip` });
    const r = await curl(['-I', url]);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(data.length));
    assert.equal(r.headers.etag, etag);
    // Nothing follows the headers on the wire.
    const { hostPort, pathQuery } = splitHttpUrl(url);
    const raw = await rawRequest(hostPort, `HEAD ${pathQuery} HTTP/1.1\r\nHost: ${hostPort}\r\nConnection: close\r\n\r\n`);
    assert.match(raw.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(raw.text.endsWith('\r\n\r\n'), 'HEAD answered with a body');
    const withGetUrl = await curl(['-I', getUrl]);
    assert.equal(withGetUrl.status, 403);
  });

  it('rejects a tampered signature with 403 SignatureDoesNotMatch', async () => {
    const sig = /X-Amz-Signature=([0-9a-f]+)/.exec(getUrl)[1];
    const flipped = sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');
    const r = await curl([getUrl.replace(sig, flipped)]);
    assert.equal(r.status, 403);
    assert.equal(xmlCode(r.text), 'SignatureDoesNotMatch');
    assert.match(r.headers['content-type'], /xml/);
    // Any other change that is signed: the expiry, the path.
    const longer = await curl([getUrl.replace('X-Amz-Expires=900', 'X-Amz-Expires=901')]);
    assert.equal(xmlCode(longer.text), 'SignatureDoesNotMatch');
    const other = await curl([getUrl.replace('/demo-model.zip?', '/other.zip?')]);
    assert.equal(other.status, 403);
    assert.equal(xmlCode(other.text), 'SignatureDoesNotMatch');
    const nosig = await curl([getUrl.replace(/&?X-Amz-Signature=[0-9a-f]+/, '')]);
    assert.equal(nosig.status, 400);
    assert.equal(xmlCode(nosig.text), 'AuthorizationQueryParametersError');
    const anonymous = await curl([getUrl.split('?')[0]]);
    assert.equal(anonymous.status, 403);
    assert.equal(xmlCode(anonymous.text), 'AccessDenied');
  });

  it('rejects the wrong method with 403', async () => {
    const asPut = await curl(['-T', emu.file('w', 'x'), getUrl]);
    assert.equal(asPut.status, 403);
    assert.equal(xmlCode(asPut.text), 'SignatureDoesNotMatch');
    const c = await emu.create();
    const asGet = await curl([c.presigned_url]);
    assert.equal(asGet.status, 403);
    assert.equal(xmlCode(asGet.text), 'SignatureDoesNotMatch');
  });

  it('rejects an expired URL with 403 AccessDenied "Request has expired"', async () => {
    await emu.fault({ role: 'api', action: { type: 'expire_next_url' } });
    const c = await emu.create();
    const r = await curl(['-T', emu.file('x', 'late'), c.presigned_url]);
    assert.equal(r.status, 403);
    assert.equal(xmlCode(r.text), 'AccessDenied');
    assert.equal(xmlMessage(r.text), 'Request has expired');
  });

  it('refuses a chunked PUT with 411 MissingContentLength', async () => {
    const c = await emu.create();
    const r = await curl(['-T', emu.file('c', 'chunky'), '-H', 'Transfer-Encoding: chunked', c.presigned_url]);
    assert.equal(r.status, 411);
    assert.equal(xmlCode(r.text), 'MissingContentLength');
    const st = await emu.state();
    assert.equal(st.objects[c.filepath], undefined);
  });

  it('refuses a declared length over 5 GiB with 400 EntityTooLarge before any body', async () => {
    const c = await emu.create();
    const { hostPort, pathQuery } = splitHttpUrl(c.presigned_url);
    const size = 5 * 1024 ** 3 + 1;
    const r = await rawRequest(hostPort, `PUT ${pathQuery} HTTP/1.1\r\nHost: ${hostPort}\r\nContent-Length: ${size}\r\n\r\n`);
    assert.match(r.text, /^HTTP\/1\.1 400 /);
    assert.equal(xmlCode(r.text), 'EntityTooLarge');
    assert.match(r.text, /<MaxSizeAllowed>5368709120<\/MaxSizeAllowed>/);
    assert.match(r.text, /connection: close/i);
  });

  it('answers Expect: 100-continue with 100 for a good request and refuses a bad one without the body', async () => {
    const c = await emu.create();
    const { hostPort, pathQuery } = splitHttpUrl(c.presigned_url);
    const good = await rawRequest(hostPort, `PUT ${pathQuery} HTTP/1.1\r\nHost: ${hostPort}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`, { waitMs: 300 });
    assert.match(good.text, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    const bad = await rawRequest(hostPort, `PUT ${pathQuery.replace('X-Amz-Signature=', 'X-Amz-Signature=0')} HTTP/1.1\r\nHost: ${hostPort}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`);
    assert.match(bad.text, /^HTTP\/1\.1 403 /);
    assert.doesNotMatch(bad.text, /100 Continue/);
    // curl sends Expect for bodies over 1 MiB; the upload goes through.
    const big = crypto.randomBytes(1100000);
    const r = await curl(['-T', emu.file('big', big), c.presigned_url]);
    assert.equal(r.status, 200);
    assert.equal(r.statusLines[0].split(' ')[1], '100');
  });

  it('checks a Content-MD5 header', async () => {
    const c = await emu.create();
    const r = await curl(['-T', emu.file('m', 'abc'), '-H', `Content-MD5: ${crypto.createHash('md5').update('abd').digest('base64')}`, c.presigned_url]);
    assert.equal(r.status, 400);
    assert.equal(xmlCode(r.text), 'BadDigest');
  });

  it('answers 404 NoSuchKey for an object never uploaded', async () => {
    const { url } = await emu.adminCall('POST', '/presign', { method: 'GET', key: 'demo-org/demo-app/demo-model/999/none.zip' });
    const r = await curl([url]);
    assert.equal(r.status, 404);
    assert.equal(xmlCode(r.text), 'NoSuchKey');
    assert.match(r.text, /<Key>demo-org\/demo-app\/demo-model\/999\/none\.zip<\/Key>/);
    const head = await curl(['-I', (await emu.adminCall('POST', '/presign', { method: 'HEAD', key: 'nothing/here' })).url]);
    assert.equal(head.status, 404);
    assert.doesNotMatch(head.text, /<Error>/);
  });

  it('refuses a URL signed for another region or key id', async () => {
    const region = await curl([getUrl.replace('%2Fus-east-1%2F', '%2Feu-west-1%2F')]);
    assert.equal(region.status, 400);
    assert.equal(xmlCode(region.text), 'AuthorizationQueryParametersError');
    const akid = await curl([getUrl.replace('AKIAEMULATOR00000000', 'AKIAOTHER')]);
    assert.equal(akid.status, 403);
    assert.equal(xmlCode(akid.text), 'InvalidAccessKeyId');
  });

  it('stores large bodies exactly (hashing on a worker)', async () => {
    const big = crypto.randomBytes(12 * 1024 * 1024 + 3);
    const v = await emu.publish(big);
    assert.equal(v.put.headers.etag, `"${crypto.createHash('md5').update(big).digest('hex')}"`);
    const r = await curl([await emu.downloadUrl(MODEL_PATH, `?version=${v.version}`)]);
    assert.ok(r.body.equals(big));
  });

  it('never sees the API token', async () => {
    const log = await emu.requests();
    assert.ok(log.storage.length > 5);
    for (const e of log.storage) assert.equal(e.headers['x-api-token'], undefined);
  });
});
