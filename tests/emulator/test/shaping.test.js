'use strict';
// Link shaping: a per-connection rate and a delay before the first byte of each answer,
// on the download and storage hosts, from the command line and the admin endpoint.
// Timings are only ever bounded from below (a shaped transfer cannot be faster than its
// link allows): a busy machine makes everything slower, never faster.

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { execFile, spawnSync } = require('child_process');
const { startEmu, tmpDir, MODEL_PATH, SERVER, TOKEN } = require('../test-support/helpers');

const MiB = 1 << 20;

/** curl to /dev/null; resolves to {status, bytes, total, firstByte} (seconds, from curl). */
function timedGet(url, headers = []) {
  const args = ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total} %{time_starttransfer}'];
  for (const h of headers) args.push('-H', h);
  args.push(url);
  return new Promise((resolve, reject) => {
    execFile('curl', args, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl: ${stderr || err.message}`));
      const [status, bytes, total, firstByte] = stdout.trim().split(' ').map(Number);
      resolve({ status, bytes, total, firstByte });
    });
  });
}

describe('link shaping', () => {
  let emu;
  const data = crypto.randomBytes(3 * MiB);
  let getUrl;

  before(async () => {
    emu = await startEmu();
    const v = await emu.publish(data);
    getUrl = await emu.downloadUrl(MODEL_PATH, `?version=${v.version}`);
  });
  afterEach(async () => { await emu.clearShaping(); });
  after(async () => { await emu.stop(); });

  it('is off by default and set, merged and cleared through /admin/shaping', async () => {
    const none = { rate: 0, first_byte_ms: 0 };
    assert.deepEqual(await emu.shaping(), { download: none, storage: none });
    await emu.shape({ storage: { rate: 1000 } });
    const merged = await emu.shape({ storage: { first_byte_ms: 20 }, download: { first_byte_ms: 5 } });
    assert.deepEqual(merged, { download: { rate: 0, first_byte_ms: 5 }, storage: { rate: 1000, first_byte_ms: 20 } });
    assert.deepEqual((await emu.adminCall('GET', '')).shaping, merged);
    assert.deepEqual(await emu.clearShaping(), { download: none, storage: none });
  });

  it('refuses bad settings with 400 and changes nothing', async () => {
    for (const bad of [
      [],
      { api: { rate: 1000 } },
      { storage: { rate: -1 } },
      { storage: { rate: 1.5 } },
      { storage: { first_byte_ms: 'soon' } },
      { storage: { speed: 1 } },
      { download: { rate: 10 }, storage: { first_byte_ms: -5 } },
    ]) {
      const res = await fetch(`${emu.adminUrl}/shaping`, { method: 'PUT', body: JSON.stringify(bad) });
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.ok((await res.json()).error);
    }
    const none = { rate: 0, first_byte_ms: 0 };
    assert.deepEqual(await emu.shaping(), { download: none, storage: none });
  });

  it('holds a storage GET to the rate of its connection', async () => {
    const rate = MiB; // 3 MiB at 1 MiB/s: about 3 s
    await emu.shape({ storage: { rate } });
    const r = await timedGet(getUrl);
    assert.equal(r.status, 200);
    assert.equal(r.bytes, data.length);
    // bytes / elapsed cannot beat the rate by more than the bucket's short burst
    assert.ok(r.bytes / r.total < 1.5 * rate, `measured ${(r.bytes / r.total / MiB).toFixed(2)} MiB/s`);
  });

  it('limits each connection on its own: ranges on two connections each keep to the rate', async () => {
    const rate = MiB;
    await emu.shape({ storage: { rate } });
    const half = data.length / 2;
    const [a, b] = await Promise.all([
      timedGet(getUrl, [`Range: bytes=0-${half - 1}`]),
      timedGet(getUrl, [`Range: bytes=${half}-`]),
    ]);
    for (const r of [a, b]) {
      assert.equal(r.status, 206);
      assert.equal(r.bytes, half);
      assert.ok(r.bytes / r.total < 1.5 * rate, `measured ${(r.bytes / r.total / MiB).toFixed(2)} MiB/s`);
    }
  });

  it('holds an upload to storage to the rate of its connection, small bodies and large', async () => {
    // 3 MiB goes through the small path, 12 MiB through the large one (slots and a worker)
    for (const [size, rate] of [[3 * MiB, MiB], [12 * MiB, 4 * MiB]]) {
      await emu.shape({ storage: { rate } });
      const created = await emu.create();
      const body = crypto.randomBytes(size);
      const file = emu.file(`shaped-${size}`, body);
      const r = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_upload} %{time_total} %header{etag}',
        '-T', file, '-H', 'Content-Type: application/octet-stream', created.presigned_url], { encoding: 'utf8' });
      const words = r.stdout.trim().split(' ');
      const [status, bytes, total] = words.map(Number);
      assert.equal(status, 200, r.stderr);
      // what arrived is the body, whole: the ETag is its MD5
      assert.equal(words[3], `"${crypto.createHash('md5').update(body).digest('hex')}"`);
      assert.equal(bytes, size);
      assert.ok(bytes / total < 1.5 * rate, `measured ${(bytes / total / MiB).toFixed(2)} MiB/s at ${rate / MiB} MiB/s`);
    }
  });

  it('delays the first byte of every answer on the download and storage hosts', async () => {
    await emu.shape({ download: { first_byte_ms: 400 }, storage: { first_byte_ms: 400 } });
    const e8 = await timedGet(emu.url(`${MODEL_PATH}`, 'download'), [`X-API-TOKEN: ${TOKEN}`]);
    assert.equal(e8.status, 302);
    assert.ok(e8.firstByte >= 0.35, `download host answered after ${e8.firstByte} s`);
    const get = await timedGet(getUrl, ['Range: bytes=0-99']);
    assert.equal(get.status, 206);
    assert.equal(get.bytes, 100);
    assert.ok(get.firstByte >= 0.35, `storage answered after ${get.firstByte} s`);
    // errors wait too: they are answers like any other
    const missing = await timedGet(await emu.adminCall('POST', '/presign', { key: 'no/such/key' }).then((p) => p.url));
    assert.equal(missing.status, 404);
    assert.ok(missing.firstByte >= 0.35, `404 after ${missing.firstByte} s`);
  });

  it('leaves the API host alone', async () => {
    await emu.shape({ download: { first_byte_ms: 2000 }, storage: { first_byte_ms: 2000 } });
    const r = await timedGet(emu.url('organizations'), [`X-API-TOKEN: ${TOKEN}`]);
    assert.equal(r.status, 200);
    // the only upper bound in this file, on the part that is not shaped, far from 2 s
    assert.ok(r.firstByte < 1.5, `API answered after ${r.firstByte} s`);
  });
});

describe('link shaping from the command line', () => {
  it('--rate and --first-byte-ms shape the download and storage hosts', async () => {
    const emu = await startEmu({ args: ['--rate', String(2 * MiB), '--first-byte-ms', '300'] });
    try {
      const want = { rate: 2 * MiB, first_byte_ms: 300 };
      assert.deepEqual(await emu.shaping(), { download: want, storage: want });
      const data = crypto.randomBytes(4 * MiB);
      const v = await emu.publish(data); // PUT bodies are not shaped
      const url = await emu.downloadUrl(MODEL_PATH, `?version=${v.version}`);
      const r = await timedGet(url);
      assert.equal(r.bytes, data.length);
      assert.ok(r.firstByte >= 0.25, `first byte after ${r.firstByte} s`);
      assert.ok(r.bytes / r.total < 1.5 * 2 * MiB, `measured ${(r.bytes / r.total / MiB).toFixed(2)} MiB/s`);
    } finally {
      await emu.stop();
    }
  });

  it('refuses bad values with exit code 2', () => {
    const dir = tmpDir();
    try {
      for (const args of [['--rate', 'fast'], ['--rate', '-3'], ['--first-byte-ms', '1e3'], ['--first-byte-ms']]) {
        const r = spawnSync(process.execPath, [SERVER, '--data', dir, ...args], { encoding: 'utf8' });
        assert.equal(r.status, 2, args.join(' '));
        assert.equal(r.stdout, '');
        assert.match(r.stderr, /needs an integer/);
      }
    } finally {
      require('fs').rmSync(dir, { recursive: true, force: true });
    }
  });
});
