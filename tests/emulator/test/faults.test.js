'use strict';
// The admin endpoint: every fault action does what it says; the request log records
// every request per role.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { startEmu, curl, MODEL_PATH } = require('../test-support/helpers');

const xmlCode = (text) => (/<Code>([^<]*)<\/Code>/.exec(text) || [])[1];

describe('fault injection and request log', () => {
  let emu;
  const data = crypto.randomBytes(200000);
  let getUrl;

  before(async () => {
    emu = await startEmu();
    const v = await emu.publish(data);
    getUrl = await emu.downloadUrl(MODEL_PATH, `?version=${v.version}`);
  });
  afterEach(async () => { await emu.clearFaults(); });
  after(async () => { await emu.stop(); });

  it('validates rules and returns an id', async () => {
    const r = await emu.fault({ role: 'api', action: { type: 'delay', ms: 1 } });
    assert.equal(typeof r.id, 'number');
    for (const bad of [
      { role: 'nope', action: { type: 'delay', ms: 1 } },
      { role: 'api', action: { type: 'teleport' } },
      { role: 'storage', action: { type: 'expire_next_url' } },
      { role: 'api', action: { type: 'etag' } },
      { role: 'api', times: 0, action: { type: 'delay', ms: 1 } },
    ]) {
      const res = await fetch(`${emu.adminUrl}/faults`, { method: 'POST', body: JSON.stringify(bad) });
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.ok((await res.json()).error);
    }
    const cleared = await emu.clearFaults();
    assert.equal(cleared.cleared, 1);
  });

  it('status: answers instead of handling, `times` times, then normally', async () => {
    await emu.fault({ role: 'api', method: 'GET', path_prefix: '/v2/organizations', times: 2, action: { type: 'status', status: 503 } });
    const a = await emu.call('GET', 'organizations');
    const b = await emu.call('GET', 'organizations');
    const c = await emu.call('GET', 'organizations');
    assert.deepEqual([a.status, b.status, c.status], [503, 503, 200]);
    assert.match(a.json.error, /503/);
  });

  it('status: sends the given body and headers', async () => {
    await emu.fault({ role: 'download', action: { type: 'status', status: 502, body: '<html>bad gateway</html>', headers: { 'Content-Type': 'text/html', 'Retry-After': '2' } } });
    const r = await curl(['-H', 'X-API-TOKEN: demo-token', emu.url(MODEL_PATH, 'download')]);
    assert.equal(r.status, 502);
    assert.equal(r.text, '<html>bad gateway</html>');
    assert.equal(r.headers['retry-after'], '2');
    assert.equal(r.headers['content-type'], 'text/html');
  });

  it('status: matches method and path prefix only', async () => {
    await emu.fault({ role: 'api', method: 'POST', path_prefix: '/v2/organizations/demo-org/apps/demo-app/models/demo-model/deploy', times: -1, action: { type: 'status', status: 500 } });
    assert.equal((await emu.call('GET', 'organizations')).status, 200);
    assert.equal((await emu.call('POST', `${MODEL_PATH}/deploy`, {})).status, 500);
    assert.equal((await emu.call('POST', `${MODEL_PATH}/deploy`, {})).status, 500, 'times -1 keeps matching');
    await emu.clearFaults();
    assert.equal((await emu.call('POST', `${MODEL_PATH}/deploy`, {})).status, 200);
  });

  it('status on storage: an S3 XML error by default, and nothing stored', async () => {
    await emu.fault({ role: 'storage', method: 'PUT', action: { type: 'status', status: 503 } });
    const c = await emu.create();
    const r = await curl(['-T', emu.file('s', 'x'.repeat(1000)), c.presigned_url]);
    assert.equal(r.status, 503);
    assert.equal(xmlCode(r.text), 'SlowDown');
    assert.equal((await emu.state()).objects[c.filepath], undefined);
    await emu.fault({ role: 'storage', method: 'GET', action: { type: 'status', status: 500 } });
    const g = await curl([getUrl]);
    assert.equal(g.status, 500);
    assert.equal(xmlCode(g.text), 'InternalError');
  });

  it('reset (request): drops the connection after N request bytes', async () => {
    await emu.clearRequests();
    await emu.fault({ role: 'storage', method: 'PUT', action: { type: 'reset', after_bytes: 50000, direction: 'request' } });
    const c = await emu.create();
    const r = await curl(['-T', emu.file('r', crypto.randomBytes(3 * 1024 * 1024)), c.presigned_url]);
    assert.notEqual(r.exit, 0);
    // curl asked with Expect: 100-continue and got the 100, but never a final answer.
    assert.deepEqual(r.statusLines.map((l) => l.split(' ')[1]), ['100']);
    const log = await emu.requests();
    const e = log.storage.at(-1);
    assert.ok(e.bytes_in >= 50000 && e.bytes_in < 3 * 1024 * 1024, `bytes_in ${e.bytes_in}`);
    assert.equal((await emu.state()).objects[c.filepath], undefined);
    // after_bytes 0: nothing is answered at all.
    await emu.fault({ role: 'api', action: { type: 'reset', after_bytes: 0, direction: 'request' } });
    const api = await curl(['-H', 'X-API-TOKEN: demo-token', emu.url('organizations')]);
    assert.equal(api.status, 0);
    assert.ok([52, 56].includes(api.exit), `curl exit ${api.exit}`);
  });

  it('reset (response): drops the connection after N response bytes', async () => {
    await emu.fault({ role: 'storage', method: 'GET', action: { type: 'reset', after_bytes: 5000, direction: 'response' } });
    const r = await curl([getUrl]);
    assert.notEqual(r.exit, 0);
    assert.ok(r.body.length <= 5000, `got ${r.body.length}`);
    assert.ok(r.body.equals(data.subarray(0, r.body.length)));
  });

  it('truncate: announces the full length, sends N bytes, then closes', async () => {
    await emu.fault({ role: 'storage', action: { type: 'truncate', after_bytes: 1234 } });
    const r = await curl([getUrl]);
    assert.equal(r.status, 200);
    assert.equal(r.exit, 18); // CURLE_PARTIAL_FILE
    assert.equal(r.headers['content-length'], String(data.length));
    assert.equal(r.body.length, 1234);
    assert.ok(r.body.equals(data.subarray(0, 1234)));
    const log = await emu.requests();
    assert.equal(log.storage.at(-1).bytes_out, 1234);
    // On the API too: a JSON body cut short.
    await emu.fault({ role: 'api', action: { type: 'truncate', after_bytes: 5 } });
    const api = await curl(['-H', 'X-API-TOKEN: demo-token', emu.url('organizations')]);
    assert.equal(api.exit, 18);
    assert.equal(api.text.length, 5);
  });

  it('delay: waits before answering', async () => {
    await emu.fault({ role: 'api', action: { type: 'delay', ms: 400 } });
    const t0 = Date.now();
    const r = await emu.call('GET', 'organizations');
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 >= 390, `took ${Date.now() - t0} ms`);
  });

  it('stall: pauses the body after N bytes, then finishes it', async () => {
    await emu.fault({ role: 'storage', action: { type: 'stall', after_bytes: 1000, ms: 500 } });
    const t0 = Date.now();
    const r = await curl([getUrl]);
    const took = Date.now() - t0;
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(data));
    assert.ok(took >= 490, `took ${took} ms`);
    // A client with a low-speed limit gives up during the stall.
    await emu.fault({ role: 'storage', action: { type: 'stall', after_bytes: 1000, ms: 3000 } });
    const slow = await curl(['--speed-limit', '1000', '--speed-time', '1', getUrl]);
    assert.equal(slow.exit, 28); // CURLE_OPERATION_TIMEDOUT
  });

  it('trickle: sends the rest of the body at the given rate, and a low-speed limit gives up', async () => {
    await emu.fault({ role: 'storage', action: { type: 'trickle', after_bytes: data.length - 3000, bytes_per_second: 10000 } });
    const r = await curl([getUrl]);
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(data));
    await emu.fault({ role: 'storage', action: { type: 'trickle', after_bytes: 1000, bytes_per_second: 2 } });
    const slow = await curl(['--speed-limit', '1000', '--speed-time', '1', getUrl]);
    assert.equal(slow.exit, 28); // CURLE_OPERATION_TIMEDOUT
  });

  it('expire_next_url: the next presigned URL handed out is already expired', async () => {
    await emu.fault({ role: 'download', action: { type: 'expire_next_url' } });
    const expired = await emu.downloadUrl();
    const r = await curl([expired]);
    assert.equal(r.status, 403);
    assert.match(r.text, /<Message>Request has expired<\/Message>/);
    const fresh = await curl([await emu.downloadUrl()]);
    assert.equal(fresh.status, 200);
  });

  it('etag: stores the object but answers the PUT with a wrong ETag', async () => {
    await emu.fault({ role: 'storage', method: 'PUT', action: { type: 'etag', value: '"00000000000000000000000000000000"' } });
    const body = Buffer.from('integrity matters');
    const c = await emu.create();
    const r = await curl(['-T', emu.file('e', body), c.presigned_url]);
    assert.equal(r.status, 200);
    assert.equal(r.headers.etag, '"00000000000000000000000000000000"');
    const st = await emu.state();
    assert.equal(st.objects[c.filepath].etag, `"${crypto.createHash('md5').update(body).digest('hex')}"`);
  });

  it('range_prefix: only a request whose Range starts with it gets the fault', async () => {
    await emu.fault({ role: 'storage', method: 'GET', range_prefix: 'bytes=1000-', times: -1, action: { type: 'status', status: 503 } });
    const hit = await curl(['-H', 'Range: bytes=1000-1999', getUrl]);
    const other = await curl(['-H', 'Range: bytes=0-999', getUrl]);
    const none = await curl([getUrl]);
    assert.deepEqual([hit.status, other.status, none.status], [503, 206, 200]);
    const bad = await fetch(`${emu.adminUrl}/faults`, { method: 'POST', body: JSON.stringify({ role: 'storage', range_prefix: 5, action: { type: 'delay', ms: 1 } }) });
    assert.equal(bad.status, 400);
  });

  it('ignore_range: the whole object with 200 and no Accept-Ranges, whatever Range and If-Range say', async () => {
    await emu.fault({ role: 'storage', method: 'GET', times: 2, action: { type: 'ignore_range' } });
    const a = await curl(['-H', 'Range: bytes=10-19', getUrl]);
    assert.equal(a.status, 200);
    assert.equal(a.body.length, data.length);
    assert.ok(a.body.equals(data));
    assert.equal(a.headers['accept-ranges'], undefined);
    assert.equal(a.headers['content-range'], undefined);
    const b = await curl(['-H', 'Range: bytes=10-19', '-H', `If-Range: ${a.headers.etag}`, getUrl]);
    assert.equal(b.status, 200);
    const c = await curl(['-H', 'Range: bytes=10-19', getUrl]); // used up: ranges again
    assert.equal(c.status, 206);
    assert.equal(c.body.length, 10);
    const bad = await fetch(`${emu.adminUrl}/faults`, { method: 'POST', body: JSON.stringify({ role: 'api', action: { type: 'ignore_range' } }) });
    assert.equal(bad.status, 400);
  });

  it('logs every request per role with method, path, query, headers, status and byte counts', async () => {
    await emu.clearRequests();
    const c = await emu.create();
    await curl(['-T', emu.file('l', 'abcdef'), '-H', 'X-Custom: yes', c.presigned_url]);
    await curl(['-H', 'X-API-TOKEN: demo-token', emu.url(MODEL_PATH, 'download')]);
    const log = await emu.requests();
    assert.deepEqual(Object.keys(log).sort(), ['api', 'download', 'storage']);
    assert.equal(log.api.length, 1);
    const a = log.api[0];
    assert.equal(a.method, 'POST');
    assert.equal(a.path, `/v2/${MODEL_PATH}/model_versions`);
    assert.equal(a.status, 201);
    assert.ok(a.bytes_in > 0 && a.bytes_out > 0);
    assert.equal(a.headers['x-api-token'], 'demo-token');
    const s = log.storage[0];
    assert.equal(s.method, 'PUT');
    assert.equal(s.status, 200);
    assert.equal(s.bytes_in, 6);
    assert.equal(s.bytes_out, 0);
    assert.equal(s.headers['x-custom'], 'yes');
    assert.equal(s.headers['content-length'], '6');
    assert.equal(s.query['X-Amz-Algorithm'], 'AWS4-HMAC-SHA256');
    assert.ok(s.query['X-Amz-Signature']);
    assert.equal(log.download[0].status, 302);
    await emu.clearRequests();
    const empty = await emu.requests();
    assert.deepEqual(empty, { api: [], download: [], storage: [] });
  });

  it('dumps the records with GET /admin/state', async () => {
    const st = await emu.state();
    for (const k of ['organizations', 'apps', 'models', 'model_versions', 'environments', 'tokens', 'objects']) assert.ok(k in st, k);
    assert.ok(Object.values(st.models).some((m) => m.name === 'demo-model'));
  });
});
