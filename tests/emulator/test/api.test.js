'use strict';
// The API and download hosts (SPEC.md E1-E10): the upload flow, shapes, errors, limits.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { startEmu, curl, MODEL_PATH } = require('../test-support/helpers');

describe('API and download hosts', () => {
  let emu;
  before(async () => { emu = await startEmu(); });
  after(async () => { await emu.stop(); });

  it('prints one JSON line with the four URLs, all on 127.0.0.1', () => {
    assert.match(emu.line, /^\{"api": "http:\/\/127\.0\.0\.1:\d+\/v2", "download": "http:\/\/127\.0\.0\.1:\d+\/v2", "storage": "http:\/\/127\.0\.0\.1:\d+", "admin": "http:\/\/127\.0\.0\.1:\d+\/admin"\}$/);
    assert.equal(new URL(emu.api).port, new URL(emu.adminUrl).port);
    assert.notEqual(new URL(emu.api).port, new URL(emu.download).port);
  });

  it('runs the whole upload flow: E4, PUT, E6, E7, E8, GET with identical bytes', async () => {
    const data = crypto.randomBytes(300000);
    const created = await emu.create(MODEL_PATH, { filename: 'demo-model.zip', description: 'flow test' });
    assert.equal(typeof created.model_version_id, 'number');
    assert.equal(created.filepath, `demo-org/demo-app/demo-model/${created.model_version_id}/demo-model.zip`);
    assert.match(created.presigned_url, new RegExp(`^${emu.storage}/skafos-emulator/demo-org/demo-app/demo-model/${created.model_version_id}/demo-model\\.zip\\?`));
    assert.match(created.presigned_url, /X-Amz-Algorithm=AWS4-HMAC-SHA256/);
    assert.match(created.presigned_url, /X-Amz-Expires=900(&|$)/);
    assert.doesNotMatch(created.presigned_url, /checksum/i);

    const file = emu.file('flow.bin', data);
    const put = await curl(['-T', file, '-H', 'Content-Type: application/octet-stream', created.presigned_url]);
    assert.equal(put.status, 200);
    assert.equal(put.body.length, 0);
    assert.equal(put.headers.etag, `"${crypto.createHash('md5').update(data).digest('hex')}"`);

    const fin = await emu.call('PATCH', `${MODEL_PATH}/model_versions/${created.model_version_id}`, { filepath: created.filepath });
    assert.equal(fin.status, 200);
    const version = fin.json.version;
    assert.ok(Number.isInteger(version) && version >= 1);
    assert.equal(fin.json.description, 'flow test');
    assert.equal(fin.json.name, 'demo-model');
    assert.match(fin.json.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);

    const list = await emu.call('GET', `${MODEL_PATH}/model_versions?order_by=version`);
    assert.equal(list.status, 200);
    assert.ok(list.json.some((v) => v.version === version && v.description === 'flow test'));

    // E8 by number and as latest; the redirect is followed without the token, as SPEC.md
    // asks (curl -L would forward -H headers to the storage host).
    for (const q of [`?version=${version}`, '']) {
      await emu.clearRequests();
      const e8 = await curl(['-H', 'X-API-TOKEN: demo-token', emu.url(`${MODEL_PATH}${q}`, 'download')]);
      assert.equal(e8.status, 302);
      assert.match(e8.headers.location, new RegExp(`^${emu.storage}/skafos-emulator/`));
      const got = await curl([e8.headers.location]);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(data), 'downloaded bytes differ');
      const log = await emu.requests();
      assert.equal(log.download.length, 1);
      assert.equal(log.download[0].headers['x-api-token'], 'demo-token');
      assert.equal(log.storage.length, 1);
      assert.equal(log.storage[0].headers['x-api-token'], undefined);
    }
  });

  it('E1 lists the organizations of the token, E2 its apps with models', async () => {
    const orgs = await emu.call('GET', 'organizations');
    assert.equal(orgs.status, 200);
    assert.deepEqual(orgs.json.map((o) => o.display_name), ['demo-org']);
    const apps = await emu.call('GET', 'organizations/demo-org/apps?with_models=true');
    assert.equal(apps.status, 200);
    assert.equal(apps.json[0].name, 'demo-app');
    const model = apps.json[0].models.find((m) => m.name === 'demo-model');
    assert.ok(model);
    assert.match(model.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
  });

  it('answers 401 {"error": "Invalid API token"} without or with a wrong token', async () => {
    for (const token of [null, 'nope', '']) {
      for (const [m, p, role] of [['GET', 'organizations', 'api'], ['POST', `${MODEL_PATH}/model_versions`, 'api'], ['GET', MODEL_PATH, 'download']]) {
        const r = await emu.call(m, p, m === 'POST' ? { filename: 'x.zip' } : undefined, { token, role });
        assert.equal(r.status, 401, `${m} ${p} token=${token}`);
        assert.deepEqual(r.json, { error: 'Invalid API token' });
      }
    }
  });

  it('answers 404 naming what is missing', async () => {
    const cases = [
      ['GET', 'organizations/nope/apps', "organization 'nope' not found"],
      ['GET', 'organizations/demo-org/apps/x/models/demo-model/model_versions', "app 'x' not found in organization 'demo-org'"],
      ['GET', 'organizations/demo-org/apps/demo-app/models/m/model_versions', "model 'm' not found in app 'demo-app'"],
      ['PATCH', `${MODEL_PATH}/model_versions/777`, 'model version 777 not found'],
    ];
    for (const [m, p, msg] of cases) {
      const r = await emu.call(m, p, m === 'PATCH' ? { filepath: 'x' } : undefined);
      assert.equal(r.status, 404, p);
      assert.deepEqual(r.json, { error: msg });
    }
    const dl = await emu.call('GET', `${MODEL_PATH}?version=777`, undefined, { role: 'download' });
    assert.equal(dl.status, 404);
    assert.deepEqual(dl.json, { error: 'model version 777 not found' });
    const dlApp = await emu.call('GET', 'organizations/demo-org/apps/x/models/demo-model', undefined, { role: 'download' });
    assert.deepEqual([dlApp.status, dlApp.json], [404, { error: "app 'x' not found in organization 'demo-org'" }]);
  });

  it('E8 answers 404 "has no versions" for a model without finalized versions', async () => {
    const r = await emu.call('POST', 'organizations/demo-org/apps/demo-app/models', { name: 'empty-model', description: 'none yet' });
    assert.equal(r.status, 201);
    const m = 'organizations/demo-org/apps/demo-app/models/empty-model';
    await emu.create(m); // unfinalized: still no version
    const dl = await emu.call('GET', m, undefined, { role: 'download' });
    assert.equal(dl.status, 404);
    assert.deepEqual(dl.json, { error: "model 'empty-model' has no versions" });
    const list = await emu.call('GET', `${m}/model_versions?order_by=version`);
    assert.deepEqual([list.status, list.json], [200, []]);
  });

  it('keeps unfinalized versions out of E7 and E8', async () => {
    const m = 'organizations/demo-org/apps/demo-app/models/unfinished';
    assert.equal((await emu.call('POST', 'organizations/demo-org/apps/demo-app/models', { name: 'unfinished' })).status, 201);
    const v1 = await emu.publish(Buffer.from('one'), { model: m });
    // Uploaded but never finalized:
    const c = await emu.create(m);
    const put = await curl(['-T', emu.file('two', 'two'), c.presigned_url]);
    assert.equal(put.status, 200);
    const list = await emu.call('GET', `${m}/model_versions?order_by=version`);
    assert.deepEqual(list.json.map((v) => v.version), [v1.version]);
    const latest = await curl([await emu.downloadUrl(m)]);
    assert.equal(latest.text, 'one');
    const byId = await emu.call('GET', `${m}?version=${v1.version + 1}`, undefined, { role: 'download' });
    assert.equal(byId.status, 404);
  });

  it('E6 is idempotent, checks the filepath (400) and that the object exists (409)', async () => {
    const c = await emu.create();
    const patch = (body) => emu.call('PATCH', `${MODEL_PATH}/model_versions/${c.model_version_id}`, body);
    const missing = await patch({ filepath: c.filepath });
    assert.equal(missing.status, 409);
    assert.match(missing.json.error, /nothing was uploaded/);
    assert.equal((await patch({})).status, 422);
    assert.equal((await curl(['-T', emu.file('e6', 'e6 bytes'), c.presigned_url])).status, 200);
    const wrong = await patch({ filepath: 'demo-org/demo-app/demo-model/0/other.zip' });
    assert.equal(wrong.status, 400);
    assert.match(wrong.json.error, /does not match/);
    const first = await patch({ filepath: c.filepath });
    const second = await patch({ filepath: c.filepath });
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    assert.equal(second.json.version, first.json.version);
    const list = await emu.call('GET', `${MODEL_PATH}/model_versions?order_by=version`);
    assert.equal(list.json.filter((v) => v.model_version_id === c.model_version_id).length, 1);
    const versions = list.json.map((v) => v.version);
    assert.deepEqual(versions, [...versions].sort((a, b) => a - b));
  });

  it('rejects a description over 255 characters with 422 and creates nothing', async () => {
    const before = await emu.state();
    const long = await emu.call('POST', `${MODEL_PATH}/model_versions`, { filename: 'demo-model.zip', description: 'é'.repeat(256) });
    assert.equal(long.status, 422);
    assert.match(long.json.error, /255/);
    const afterState = await emu.state();
    assert.equal(Object.keys(afterState.model_versions).length, Object.keys(before.model_versions).length);
    const ok = await emu.call('POST', `${MODEL_PATH}/model_versions`, { filename: 'demo-model.zip', description: 'é'.repeat(255) });
    assert.equal(ok.status, 201);
  });

  it('E3 creates a model (201) and refuses a duplicate (409)', async () => {
    const r = await emu.call('POST', 'organizations/demo-org/apps/demo-app/models', { name: 'new-model', description: 'd' });
    assert.equal(r.status, 201);
    for (const k of ['id', 'name', 'description', 'public', 'app_id', 'inserted_at', 'updated_at']) assert.ok(k in r.json, k);
    assert.equal(r.json.name, 'new-model');
    const dup = await emu.call('POST', 'organizations/demo-org/apps/demo-app/models', { name: 'new-model' });
    assert.equal(dup.status, 409);
    assert.deepEqual(dup.json, { error: "model 'new-model' already exists in app 'demo-app'" });
  });

  it('E9 lists environments with names, ids and device counts', async () => {
    const r = await emu.call('GET', `${MODEL_PATH}/environment_groups?with_device_count=true`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.map((e) => e.name), ['Dev', 'Prod']);
    for (const e of r.json) {
      assert.equal(typeof e.id, 'number');
      assert.equal(typeof e.device_count, 'number');
    }
  });

  it('E10 deploys latest or a given version, and refuses unknown environments and versions', async () => {
    const v = await emu.publish(Buffer.from('deploy me'));
    const ok = await emu.call('POST', `${MODEL_PATH}/deploy`, { version: 'latest', environment: 'dev' });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { success: `Deployed model version ${v.version} to Dev` });
    const num = await emu.call('POST', `${MODEL_PATH}/deploy`, { version: v.version, environment: 'Prod' });
    assert.deepEqual([num.status, num.json], [200, { success: `Deployed model version ${v.version} to Prod` }]);
    const staging = await emu.call('POST', `${MODEL_PATH}/deploy`, { version: 'latest', environment: 'staging' });
    assert.equal(staging.status, 400);
    assert.match(staging.json.error, /staging/);
    const unknown = await emu.call('POST', `${MODEL_PATH}/deploy`, { version: 9999, environment: 'dev' });
    assert.deepEqual([unknown.status, unknown.json], [400, { error: 'model version 9999 not found' }]);
    const envs = await emu.call('GET', `${MODEL_PATH}/environment_groups?with_device_count=true`);
    assert.equal(envs.json.find((e) => e.name === 'Prod').deployed_version, v.version);
  });

  it('gives concurrent uploads to one model distinct, consecutive versions', async () => {
    const m = 'organizations/demo-org/apps/demo-app/models/busy';
    assert.equal((await emu.call('POST', 'organizations/demo-org/apps/demo-app/models', { name: 'busy' })).status, 201);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => emu.publish(Buffer.from(`payload ${i}`), { model: m })));
    const versions = results.map((r) => r.version).sort((a, b) => a - b);
    assert.deepEqual(versions, [1, 2, 3, 4, 5, 6, 7, 8]);
    const list = await emu.call('GET', `${m}/model_versions?order_by=version`);
    assert.deepEqual(list.json.map((v) => v.version), [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('answers JSON errors for bad bodies and unknown endpoints', async () => {
    const res = await fetch(emu.url(`${MODEL_PATH}/model_versions`), {
      method: 'POST', headers: { 'X-API-TOKEN': 'demo-token' }, body: '{not json',
    });
    assert.equal(res.status, 400);
    assert.ok((await res.json()).error);
    const nofile = await emu.call('POST', `${MODEL_PATH}/model_versions`, { description: 'x' });
    assert.equal(nofile.status, 422);
    const route = await emu.call('GET', 'organizations/demo-org/nothing');
    assert.equal(route.status, 404);
    assert.ok(route.json.error);
  });
});

describe('names with spaces and non-ASCII characters', () => {
  let emu;
  const org = 'Äcme Labs';
  const app = 'my app/ünï';
  const model = 'größe modell 🚀';
  const awkward = ["a'b(c)*!~ d", 'x+y=z&q?#%', 'ü/../dot', 'a//b'];
  before(async () => {
    const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'skafos-seed-'));
    const seed = path.join(dir, 'seed.json');
    fs.writeFileSync(seed, JSON.stringify({
      tokens: { 'tok-1': [org], 'tok-2': ['other'] },
      organizations: [
        { display_name: org, apps: [{ name: app, environments: ['Dev', { name: 'Prod', device_count: 7 }, 'QA'], models: [model, ...awkward] }] },
        { display_name: 'other' },
      ],
    }));
    emu = await startEmu({ seed });
    fs.rmSync(dir, { recursive: true });
  });
  after(async () => { await emu.stop(); });

  const enc = encodeURIComponent;
  const mpath = () => `organizations/${enc(org)}/apps/${enc(app)}/models/${enc(model)}`;

  it('percent-decodes path segments and round-trips an upload', async () => {
    const created = await emu.call('POST', `${mpath()}/model_versions`, { filename: `${model}.zip` }, { token: 'tok-1' });
    assert.equal(created.status, 201);
    // The `/` inside the app name becomes `_`: a filepath always has five segments.
    assert.equal(created.json.filepath, `${org}/my app_ünï/${model}/${created.json.model_version_id}/${model}.zip`);
    const put = await curl(['-T', emu.file('n.bin', 'unicode bytes'), created.json.presigned_url]);
    assert.equal(put.status, 200);
    const fin = await emu.call('PATCH', `${mpath()}/model_versions/${created.json.model_version_id}`, { filepath: created.json.filepath }, { token: 'tok-1' });
    assert.equal(fin.status, 200);
    const e8 = await emu.call('GET', mpath(), undefined, { token: 'tok-1', role: 'download' });
    assert.equal(e8.status, 302);
    const got = await curl([e8.headers.get('location')]);
    assert.equal(got.text, 'unicode bytes');
    const apps = await emu.call('GET', `organizations/${enc(org)}/apps?with_models=true`, undefined, { token: 'tok-1' });
    assert.equal(apps.json[0].name, app);
    assert.equal(apps.json[0].models[0].name, model);
  });

  it('hands out URLs that a WHATWG URL client (fetch) can use, whatever the names', async () => {
    for (const name of awkward) {
      const m = `organizations/${enc(org)}/apps/${enc(app)}/models/${enc(name)}`;
      const c = await emu.call('POST', `${m}/model_versions`, { filename: 'x.zip' }, { token: 'tok-1' });
      assert.equal(c.status, 201, name);
      assert.equal(c.json.filepath.split('/').length, 5, c.json.filepath);
      const put = await fetch(c.json.presigned_url, { method: 'PUT', body: `data of ${name}` });
      assert.equal(put.status, 200, `${name}: ${await put.text()}`);
      const fin = await emu.call('PATCH', `${m}/model_versions/${c.json.model_version_id}`, { filepath: c.json.filepath }, { token: 'tok-1' });
      assert.equal(fin.status, 200);
      const e8 = await emu.call('GET', m, undefined, { token: 'tok-1', role: 'download' });
      const get = await fetch(e8.headers.get('location'));
      assert.equal(await get.text(), `data of ${name}`);
    }
  });

  it('applies the seed: token visibility, environments and device counts', async () => {
    const hidden = await emu.call('GET', `organizations/${enc(org)}/apps`, undefined, { token: 'tok-2' });
    assert.equal(hidden.status, 404);
    const envs = await emu.call('GET', `${mpath()}/environment_groups?with_device_count=true`, undefined, { token: 'tok-1' });
    assert.deepEqual(envs.json.map((e) => [e.name, e.device_count]), [['Dev', 0], ['Prod', 7], ['QA', 0]]);
    const demo = await emu.call('GET', 'organizations', undefined, { token: 'demo-token' });
    assert.equal(demo.status, 401);
  });
});
