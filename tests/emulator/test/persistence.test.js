'use strict';
// Process life: one line on stdout, clean stop on SIGTERM/SIGINT, state and objects
// surviving restarts (even after SIGKILL), seeds, command-line errors.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { startEmu, curl, tmpDir, SERVER, MODEL_PATH } = require('../test-support/helpers');

describe('process and persistence', () => {
  it('keeps records, objects and deployments across a restart', async () => {
    const emu = await startEmu();
    try {
      const v1 = await emu.publish(Buffer.from('version one'), { description: 'first' });
      await emu.call('POST', `${MODEL_PATH}/deploy`, { version: v1.version, environment: 'prod' });
      const pending = await emu.create();
      assert.equal(await emu.kill('SIGTERM'), 0);
      assert.equal(emu.proc.extraStdout, undefined, 'nothing after the JSON line on stdout');
      await emu.start();

      const list = await emu.call('GET', `${MODEL_PATH}/model_versions?order_by=version`);
      assert.deepEqual(list.json.map((v) => [v.version, v.description]), [[v1.version, 'first']]);
      const got = await curl([await emu.downloadUrl()]);
      assert.equal(got.text, 'version one');
      const envs = await emu.call('GET', `${MODEL_PATH}/environment_groups?with_device_count=true`);
      assert.equal(envs.json.find((e) => e.name === 'Prod').deployed_version, v1.version);

      // The record created before the restart can still be completed (with a URL from now).
      const st = await emu.state();
      assert.equal(st.model_versions[pending.model_version_id].version, null);
      const v2 = await emu.publish(Buffer.from('version two'));
      assert.equal(v2.version, v1.version + 1);
      assert.ok(v2.model_version_id > pending.model_version_id, 'ids keep growing');

      // SIGKILL: nothing is half-written.
      emu.proc.kill('SIGKILL');
      await new Promise((r) => emu.proc.once('exit', r));
      await emu.start();
      const again = await emu.call('GET', `${MODEL_PATH}/model_versions?order_by=version`);
      assert.deepEqual(again.json.map((v) => v.version), [v1.version, v2.version]);
      const leftovers = fs.readdirSync(emu.dataDir).filter((f) => f.includes('.tmp'));
      assert.deepEqual(leftovers, []);
    } finally {
      await emu.stop();
    }
  });

  it('stops with exit code 0 on SIGINT', async () => {
    const emu = await startEmu();
    try {
      assert.equal(await emu.kill('SIGINT'), 0);
    } finally {
      await emu.stop();
    }
  });

  it('uses the seed only for a new data directory', async () => {
    const dir = tmpDir();
    const seed = path.join(dir, 'seed.json');
    fs.writeFileSync(seed, JSON.stringify({ tokens: { t: ['o'] }, organizations: [{ display_name: 'o' }] }));
    const emu = await startEmu({ seed });
    try {
      const orgs = await emu.call('GET', 'organizations', undefined, { token: 't' });
      assert.deepEqual(orgs.json.map((o) => o.display_name), ['o']);
      fs.writeFileSync(seed, JSON.stringify({ tokens: { u: ['p'] }, organizations: [{ display_name: 'p' }] }));
      await emu.restart();
      assert.equal((await emu.call('GET', 'organizations', undefined, { token: 't' })).status, 200);
      assert.equal((await emu.call('GET', 'organizations', undefined, { token: 'u' })).status, 401);
    } finally {
      await emu.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad seed or bad arguments with exit code 2 and nothing on stdout', () => {
    const dir = tmpDir();
    try {
      const seed = path.join(dir, 'seed.json');
      fs.writeFileSync(seed, JSON.stringify({ tokens: { t: ['missing-org'] }, organizations: [] }));
      const bad = spawnSync(process.execPath, [SERVER, '--data', path.join(dir, 'd'), '--seed', seed], { encoding: 'utf8' });
      assert.equal(bad.status, 2);
      assert.equal(bad.stdout, '');
      assert.match(bad.stderr, /missing-org/);
      const noData = spawnSync(process.execPath, [SERVER], { encoding: 'utf8' });
      assert.equal(noData.status, 2);
      assert.match(noData.stderr, /--data/);
      const badTtl = spawnSync(process.execPath, [SERVER, '--data', dir, '--url-ttl', 'soon'], { encoding: 'utf8' });
      assert.equal(badTtl.status, 2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('signs URLs with the TTL of --url-ttl, and they expire', async () => {
    const emu = await startEmu({ urlTtl: 1 });
    try {
      const c = await emu.create();
      assert.match(c.presigned_url, /X-Amz-Expires=1(&|$)/);
      await new Promise((r) => setTimeout(r, 2100));
      const r = await curl(['-T', emu.file('late', 'late'), c.presigned_url]);
      assert.equal(r.status, 403);
      assert.match(r.text, /Request has expired/);
    } finally {
      await emu.stop();
    }
  });

  it('listens on the ports it is given', async () => {
    const net = require('net');
    const free = () => new Promise((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    });
    const [a, d, s] = [await free(), await free(), await free()];
    const dir = tmpDir();
    const { spawn } = require('child_process');
    const proc = spawn(process.execPath, [SERVER, '--data', dir, '--api-port', String(a), '--download-port', String(d), '--storage-port', String(s)]);
    try {
      const line = await new Promise((resolve) => proc.stdout.once('data', (c) => resolve(String(c))));
      assert.deepEqual(JSON.parse(line), {
        api: `http://127.0.0.1:${a}/v2`, download: `http://127.0.0.1:${d}/v2`, storage: `http://127.0.0.1:${s}`, admin: `http://127.0.0.1:${a}/admin`,
      });
    } finally {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      assert.equal(await exited, 0);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
