'use strict';
// The metadata API (E1-E7, E9, E10) and the download host (E8) of SPEC.md. Paths use
// percent-decoded names; every answer is JSON, errors are {"error": "..."}.

const { HttpError, pathSegments, timestamp, charLength } = require('./util');

const MAX_DESCRIPTION = 255;
const MAX_NAME = 255;

function jsonHeaders() {
  return { 'Content-Type': 'application/json; charset=utf-8' };
}

async function sendJson(ctx, status, value, headers = {}) {
  await ctx.send(status, { ...jsonHeaders(), ...headers }, JSON.stringify(value));
}

/** The public shape of a model version record. */
function versionView(v, model) {
  return {
    id: v.id,
    model_version_id: v.id,
    version: v.version,
    name: model.name,
    model: model.name,
    model_id: model.id,
    description: v.description,
    filename: v.filename,
    filepath: v.filepath,
    size: v.size,
    etag: v.etag,
    inserted_at: v.inserted_at,
    updated_at: v.updated_at,
  };
}

/**
 * A name as one segment of an object key: a `/` inside a name would add segments, and a
 * `.` or `..` segment is rewritten by URL parsers (WHATWG fetch), breaking the signature.
 */
function keySegment(name) {
  const s = name.replace(/\//g, '_');
  return s === '.' || s === '..' ? s.replace(/\./g, '_') : s;
}

function modelView(m) {
  return {
    id: m.id, name: m.name, description: m.description, public: m.public, app_id: m.app_id,
    inserted_at: m.inserted_at, updated_at: m.updated_at,
  };
}

function checkDescription(body) {
  const d = body.description;
  if (d === undefined || d === null) return '';
  if (typeof d !== 'string') throw new HttpError(422, 'description must be a string');
  if (charLength(d) > MAX_DESCRIPTION) throw new HttpError(422, `description must be at most ${MAX_DESCRIPTION} characters (got ${charLength(d)})`);
  return d;
}

class Api {
  constructor(emu) {
    this.emu = emu;
  }

  get store() { return this.emu.store; }

  /** Resolve the token, or throw 401. Returns the organizations it can see. */
  auth(ctx) {
    const token = ctx.req.headers['x-api-token'];
    const orgs = typeof token === 'string' && token !== '' ? this.store.orgsForToken(token) : null;
    if (!orgs) throw new HttpError(401, 'Invalid API token');
    return orgs;
  }

  findOrg(orgs, name) {
    const org = orgs.find((o) => o.display_name === name);
    if (!org) throw new HttpError(404, `organization '${name}' not found`);
    return org;
  }

  findApp(org, name) {
    const app = this.store.appsOf(org).find((a) => a.name === name);
    if (!app) throw new HttpError(404, `app '${name}' not found in organization '${org.display_name}'`);
    return app;
  }

  findModel(app, name) {
    const model = this.store.modelsOf(app).find((m) => m.name === name);
    if (!model) throw new HttpError(404, `model '${name}' not found in app '${app.name}'`);
    return model;
  }

  /** `/v2/organizations/{org}/apps/{app}/models/{model}/...` → records plus the rest of the path. */
  resolve(ctx, segs) {
    const orgs = this.auth(ctx);
    const out = { rest: [] };
    if (segs[1] !== undefined) out.org = this.findOrg(orgs, segs[1]);
    if (segs[2] === 'apps' && segs[3] !== undefined) out.app = this.findApp(out.org, segs[3]);
    if (segs[4] === 'models' && segs[5] !== undefined) out.model = this.findModel(out.app, segs[5]);
    return out;
  }

  async handle(ctx) {
    try {
      await this.route(ctx);
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      await sendJson(ctx, e.status, { error: e.message });
    }
  }

  async route(ctx) {
    let segs;
    try {
      segs = pathSegments(ctx.rawPath);
    } catch {
      throw new HttpError(400, 'malformed percent-encoding in the path');
    }
    if (segs[0] !== 'v2' || segs[1] !== 'organizations') throw this.noRoute(ctx);
    segs = segs.slice(1); // ['organizations', org, 'apps', app, 'models', model, ...]
    const n = segs.length;
    const m = ctx.method;
    const shapeOk = (n < 3 || segs[2] === 'apps') && (n < 5 || segs[4] === 'models');

    if (this.roleIsDownload(ctx)) {
      if (m === 'GET' && n === 6 && shapeOk) return this.download(ctx, segs);
      throw this.noRoute(ctx);
    }
    if (!shapeOk) throw this.noRoute(ctx);
    if (m === 'GET' && n === 1) return this.listOrgs(ctx);
    if (m === 'GET' && n === 3) return this.listApps(ctx, segs);
    if (m === 'POST' && n === 5) return this.createModel(ctx, segs);
    if (n >= 7) {
      const tail = segs[6];
      if (tail === 'model_versions' && n === 7 && m === 'POST') return this.createVersion(ctx, segs);
      if (tail === 'model_versions' && n === 7 && m === 'GET') return this.listVersions(ctx, segs);
      if (tail === 'model_versions' && n === 8 && m === 'PATCH') return this.finalizeVersion(ctx, segs);
      if (tail === 'environment_groups' && n === 7 && m === 'GET') return this.listEnvironments(ctx, segs);
      if (tail === 'deploy' && n === 7 && m === 'POST') return this.deploy(ctx, segs);
    }
    throw this.noRoute(ctx);
  }

  roleIsDownload(ctx) { return ctx.role === 'download'; }

  noRoute(ctx) {
    return new HttpError(404, `no such endpoint: ${ctx.method} ${ctx.rawPath}`);
  }

  // E1
  async listOrgs(ctx) {
    const orgs = this.auth(ctx);
    await sendJson(ctx, 200, orgs.map((o) => ({ id: o.id, display_name: o.display_name })));
  }

  // E2
  async listApps(ctx, segs) {
    const { org } = this.resolve(ctx, segs);
    const withModels = ctx.query.with_models === 'true';
    const apps = this.store.appsOf(org).map((a) => {
      const view = { id: a.id, name: a.name, organization_id: org.id };
      if (withModels) {
        view.models = this.store.modelsOf(a).map((mod) => ({
          id: mod.id, name: mod.name, description: mod.description, updated_at: mod.updated_at,
        }));
      }
      return view;
    });
    await sendJson(ctx, 200, apps);
  }

  // E3
  async createModel(ctx, segs) {
    const { app } = this.resolve(ctx, segs);
    const body = await ctx.readJson();
    if (typeof body.name !== 'string' || body.name === '') throw new HttpError(422, 'name is required');
    if (charLength(body.name) > MAX_NAME) throw new HttpError(422, `name must be at most ${MAX_NAME} characters`);
    const description = checkDescription(body);
    if (this.store.modelsOf(app).some((x) => x.name === body.name)) {
      throw new HttpError(409, `model '${body.name}' already exists in app '${app.name}'`);
    }
    const model = this.store.addModel(app, body.name, description);
    this.store.save();
    await sendJson(ctx, 201, modelView(model));
  }

  // E4
  async createVersion(ctx, segs) {
    const { model } = this.resolve(ctx, segs);
    const body = await ctx.readJson();
    const filename = body.filename !== undefined ? body.filename : body.file_name;
    if (typeof filename !== 'string' || filename === '') throw new HttpError(422, 'filename is required');
    if (/[/\\]/.test(filename) || filename === '.' || filename === '..' || charLength(filename) > MAX_NAME) {
      throw new HttpError(422, `filename '${filename}' must be a plain file name`);
    }
    const description = checkDescription(body);
    const store = this.store;
    const org = store.state.organizations[store.state.apps[model.app_id].organization_id];
    const app = store.state.apps[model.app_id];
    const id = store.nextId('model_version');
    const now = timestamp();
    const filepath = [keySegment(org.display_name), keySegment(app.name), keySegment(model.name), id, filename].join('/');
    const record = {
      id, model_id: model.id, version: null, description, filename, filepath,
      size: null, etag: null, inserted_at: now, updated_at: now,
    };
    const url = await this.emu.presignFor(ctx, 'PUT', filepath);
    store.state.model_versions[id] = record;
    store.save();
    await sendJson(ctx, 201, { model_version_id: id, filepath, presigned_url: url });
  }

  // E6
  async finalizeVersion(ctx, segs) {
    const { model } = this.resolve(ctx, segs);
    const idText = segs[7];
    const record = /^\d+$/.test(idText) ? this.store.state.model_versions[Number(idText)] : undefined;
    if (!record || record.model_id !== model.id) throw new HttpError(404, `model version ${idText} not found`);
    const body = await ctx.readJson();
    if (typeof body.filepath !== 'string' || body.filepath === '') throw new HttpError(422, 'filepath is required');
    if (body.filepath !== record.filepath) {
      throw new HttpError(400, `filepath '${body.filepath}' does not match model version ${record.id} (expected '${record.filepath}')`);
    }
    const obj = this.store.getObject(record.filepath);
    if (!obj) throw new HttpError(409, `nothing was uploaded to '${record.filepath}' for model version ${record.id}`);
    if (record.version === null) {
      // Node runs this synchronously: two finalizations can never get the same number.
      model.last_version += 1;
      record.version = model.last_version;
      record.size = obj.size;
      record.etag = obj.etag;
      record.updated_at = model.updated_at = timestamp();
      this.store.save();
    }
    await sendJson(ctx, 200, versionView(record, model));
  }

  // E7
  async listVersions(ctx, segs) {
    const { model } = this.resolve(ctx, segs);
    const list = this.store.finalizedVersionsOf(model).map((v) => versionView(v, model));
    if (ctx.query.order_by !== undefined && ctx.query.order_by !== 'version') {
      throw new HttpError(400, `cannot order by '${ctx.query.order_by}'`);
    }
    await sendJson(ctx, 200, list);
  }

  /** The finalized version `wanted` ('latest', an integer or its decimal text) or an HttpError. */
  pickVersion(model, wanted, status) {
    const list = this.store.finalizedVersionsOf(model);
    if (wanted === undefined || wanted === null || wanted === 'latest') {
      if (list.length === 0) throw new HttpError(status, `model '${model.name}' has no versions`);
      return list[list.length - 1];
    }
    const n = typeof wanted === 'number' ? wanted : /^\d+$/.test(String(wanted)) ? Number(wanted) : NaN;
    const v = Number.isInteger(n) ? list.find((x) => x.version === n) : undefined;
    if (!v) throw new HttpError(status, `model version ${wanted} not found`);
    return v;
  }

  // E8 (download host)
  async download(ctx, segs) {
    const { model } = this.resolve(ctx, segs);
    const v = this.pickVersion(model, ctx.query.version, 404);
    const url = await this.emu.presignFor(ctx, 'GET', v.filepath);
    await ctx.send(302, { Location: url }, null);
  }

  // E9
  async listEnvironments(ctx, segs) {
    const { app, model } = this.resolve(ctx, segs);
    const withCount = ctx.query.with_device_count === 'true';
    const envs = this.store.environmentsOf(app).map((e) => {
      const view = {
        id: e.id, environment_group_id: e.id, name: e.name, app_id: app.id, model_id: model.id,
        deployed_version: e.deployed[model.id] === undefined ? null : e.deployed[model.id],
      };
      if (withCount) view.device_count = e.device_count;
      return view;
    });
    await sendJson(ctx, 200, envs);
  }

  // E10
  async deploy(ctx, segs) {
    const { app, model } = this.resolve(ctx, segs);
    const body = await ctx.readJson();
    const envName = body.environment === undefined ? 'dev' : body.environment;
    if (typeof envName !== 'string') throw new HttpError(400, 'environment must be a string');
    const env = this.store.environmentsOf(app).find((e) => e.name.toLowerCase() === envName.toLowerCase());
    if (!env) throw new HttpError(400, `environment '${envName}' not found for app '${app.name}'`);
    const v = this.pickVersion(model, body.version === undefined ? 'latest' : body.version, 400);
    env.deployed[model.id] = v.version;
    this.store.state.deployments.push({ model_id: model.id, environment_id: env.id, version: v.version, at: timestamp() });
    this.store.save();
    await sendJson(ctx, 200, { success: `Deployed model version ${v.version} to ${env.name}` });
  }
}

module.exports = { Api, sendJson };
