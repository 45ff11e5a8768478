'use strict';
// Persistent state of the emulator: records (organizations, apps, models, versions,
// environments, deployments, tokens) in DIR/state.json and object bodies in DIR/objects.
// Every change is written to a temporary file, fsynced and renamed over the old one.

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { timestamp } = require('./util');

const FORMAT = 1;
const DEFAULT_ENVIRONMENTS = ['Dev', 'Prod'];

class SeedError extends Error {}

/** Write `data` to `file` so that a crash leaves either the old or the new content. */
function writeFileAtomic(file, data) {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

class Store {
  constructor(dir) {
    this.dir = path.resolve(dir);
    this.file = path.join(this.dir, 'state.json');
    this.objectsDir = path.join(this.dir, 'objects');
    this.tmpDir = path.join(this.dir, 'tmp');
    this.state = null;
  }

  /** Load DIR/state.json, or build it from the seed when the directory has no state yet. */
  open(seedFile) {
    fs.mkdirSync(this.objectsDir, { recursive: true });
    fs.rmSync(this.tmpDir, { recursive: true, force: true }); // partial uploads of a dead run
    fs.mkdirSync(this.tmpDir, { recursive: true });
    if (fs.existsSync(this.file)) {
      this.state = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      if (this.state.format !== FORMAT) throw new Error(`${this.file}: unknown state format ${this.state.format}`);
      return { seeded: false };
    }
    const seedPath = seedFile || path.join(__dirname, '..', 'seed.default.json');
    let seed;
    try {
      seed = JSON.parse(fs.readFileSync(seedPath, 'utf8'));
    } catch (e) {
      throw new SeedError(`${seedPath}: ${e.message}`);
    }
    this.state = emptyState();
    this.applySeed(seed, seedPath);
    this.save();
    return { seeded: true };
  }

  save() {
    writeFileAtomic(this.file, JSON.stringify(this.state, null, 1));
  }

  nextId(kind) {
    const id = this.state.ids[kind] = (this.state.ids[kind] || 0) + 1;
    return id;
  }

  applySeed(seed, where) {
    const fail = (msg) => { throw new SeedError(`${where}: ${msg}`); };
    if (!seed || typeof seed !== 'object') fail('the seed must be a JSON object');
    if (!Array.isArray(seed.organizations)) fail('"organizations" must be an array');
    if (!seed.tokens || typeof seed.tokens !== 'object' || Array.isArray(seed.tokens)) fail('"tokens" must be an object');
    const now = timestamp();
    const orgIds = new Map();
    for (const o of seed.organizations) {
      if (!o || typeof o.display_name !== 'string' || o.display_name === '') fail('every organization needs a "display_name"');
      if (orgIds.has(o.display_name)) fail(`organization '${o.display_name}' appears twice`);
      const org = { id: this.nextId('organization'), display_name: o.display_name, inserted_at: now, updated_at: now };
      this.state.organizations[org.id] = org;
      orgIds.set(org.display_name, org.id);
      const appNames = new Set();
      for (const a of o.apps || []) {
        if (!a || typeof a.name !== 'string' || a.name === '') fail(`every app of '${o.display_name}' needs a "name"`);
        if (appNames.has(a.name)) fail(`app '${a.name}' appears twice in '${o.display_name}'`);
        appNames.add(a.name);
        const app = { id: this.nextId('app'), name: a.name, organization_id: org.id, inserted_at: now, updated_at: now };
        this.state.apps[app.id] = app;
        for (const e of a.environments || DEFAULT_ENVIRONMENTS) {
          const env = typeof e === 'string' ? { name: e } : e;
          if (!env || typeof env.name !== 'string' || env.name === '') fail(`an environment of app '${a.name}' has no "name"`);
          this.addEnvironment(app, env.name, Number.isInteger(env.device_count) ? env.device_count : 0);
        }
        const modelNames = new Set();
        for (const m of a.models || []) {
          const spec = typeof m === 'string' ? { name: m } : m;
          if (!spec || typeof spec.name !== 'string' || spec.name === '') fail(`a model of app '${a.name}' has no "name"`);
          if (modelNames.has(spec.name)) fail(`model '${spec.name}' appears twice in app '${a.name}'`);
          modelNames.add(spec.name);
          this.addModel(app, spec.name, typeof spec.description === 'string' ? spec.description : '');
        }
      }
    }
    for (const [token, orgs] of Object.entries(seed.tokens)) {
      if (!Array.isArray(orgs)) fail(`token '${token}' must map to an array of organization names`);
      this.state.tokens[token] = orgs.map((name) => {
        if (!orgIds.has(name)) fail(`token '${token}' names unknown organization '${name}'`);
        return orgIds.get(name);
      });
    }
  }

  addEnvironment(app, name, deviceCount) {
    const env = { id: this.nextId('environment'), name, app_id: app.id, device_count: deviceCount, deployed: {} };
    this.state.environments[env.id] = env;
    return env;
  }

  addModel(app, name, description) {
    const now = timestamp();
    const model = {
      id: this.nextId('model'), name, description, public: false, app_id: app.id,
      inserted_at: now, updated_at: now, last_version: 0,
    };
    this.state.models[model.id] = model;
    return model;
  }

  // Lookups. Collections are small; linear scans keep the state file plain.
  orgsForToken(token) {
    const ids = Object.prototype.hasOwnProperty.call(this.state.tokens, token) ? this.state.tokens[token] : null;
    return ids && ids.map((id) => this.state.organizations[id]).filter(Boolean);
  }
  appsOf(org) { return Object.values(this.state.apps).filter((a) => a.organization_id === org.id); }
  modelsOf(app) { return Object.values(this.state.models).filter((m) => m.app_id === app.id); }
  environmentsOf(app) { return Object.values(this.state.environments).filter((e) => e.app_id === app.id); }
  versionsOf(model) { return Object.values(this.state.model_versions).filter((v) => v.model_id === model.id); }
  finalizedVersionsOf(model) {
    return this.versionsOf(model).filter((v) => v.version != null).sort((a, b) => a.version - b.version);
  }

  // Objects: the body lives in DIR/objects/<sha256 of key>, its metadata in the state.
  objectPath(key) {
    return path.join(this.objectsDir, crypto.createHash('sha256').update(key).digest('hex'));
  }
  tmpPath() {
    return path.join(this.tmpDir, `${Date.now()}-${crypto.randomBytes(6).toString('hex')}`);
  }
  getObject(key) {
    return Object.prototype.hasOwnProperty.call(this.state.objects, key) ? this.state.objects[key] : null;
  }
  /** Move a fully written temporary file into place as `key` and record it. */
  commitObject(key, tmp, meta) {
    const file = this.objectPath(key);
    fs.renameSync(tmp, file);
    this.state.objects[key] = { ...meta, file: path.basename(file) };
    this.save();
    return this.state.objects[key];
  }
}

function emptyState() {
  return {
    format: FORMAT,
    ids: {},
    tokens: {},
    organizations: {},
    apps: {},
    environments: {},
    models: {},
    model_versions: {},
    deployments: [],
    objects: {},
  };
}

module.exports = { Store, SeedError, writeFileAtomic };
