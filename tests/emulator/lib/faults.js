'use strict';
// Fault rules set through the admin endpoint, and the per-role log of requests.
// A rule matches on role, method and path prefix and is used up after `times` matches.

const ROLES = ['api', 'download', 'storage'];
// Actions that a handler asks for at the moment it needs them, rather than on arrival.
const LAZY = new Set(['expire_next_url', 'etag', 'ignore_range']);
const ZERO_ETAG = '"00000000000000000000000000000000"';

function nonNegInt(v, name, dflt) {
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`action.${name} is required`);
    return dflt;
  }
  if (!Number.isInteger(v) || v < 0) throw new Error(`action.${name} must be a non-negative integer`);
  return v;
}

/** Check a rule posted to /admin/faults and return its normalised form (throws Error). */
function normaliseRule(spec) {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error('a fault rule must be a JSON object');
  if (!ROLES.includes(spec.role)) throw new Error(`role must be one of ${ROLES.join(', ')}`);
  if (spec.method !== undefined && typeof spec.method !== 'string') throw new Error('method must be a string');
  if (spec.path_prefix !== undefined && typeof spec.path_prefix !== 'string') throw new Error('path_prefix must be a string');
  if (spec.range_prefix !== undefined && typeof spec.range_prefix !== 'string') throw new Error('range_prefix must be a string');
  let times = spec.times === undefined ? 1 : spec.times;
  if (!Number.isInteger(times) || times === 0) throw new Error('times must be a positive integer (or -1 for every match)');
  if (times < 0) times = -1;
  const a = spec.action;
  if (!a || typeof a !== 'object') throw new Error('action must be an object');
  let action;
  switch (a.type) {
    case 'status': {
      if (!Number.isInteger(a.status) || a.status < 200 || a.status > 599) throw new Error('action.status must be an HTTP status 200..599');
      if (a.headers !== undefined && (typeof a.headers !== 'object' || a.headers === null)) throw new Error('action.headers must be an object');
      action = { type: 'status', status: a.status, body: a.body, headers: a.headers || {} };
      break;
    }
    case 'reset': {
      const direction = a.direction === undefined ? 'response' : a.direction;
      if (direction !== 'request' && direction !== 'response') throw new Error('action.direction must be "request" or "response"');
      action = { type: 'reset', after_bytes: nonNegInt(a.after_bytes, 'after_bytes', 0), direction };
      break;
    }
    case 'delay':
      action = { type: 'delay', ms: nonNegInt(a.ms, 'ms') };
      break;
    case 'stall':
      action = { type: 'stall', after_bytes: nonNegInt(a.after_bytes, 'after_bytes', 0), ms: nonNegInt(a.ms, 'ms') };
      break;
    case 'truncate':
      action = { type: 'truncate', after_bytes: nonNegInt(a.after_bytes, 'after_bytes', 0) };
      break;
    case 'trickle': {
      const rate = nonNegInt(a.bytes_per_second, 'bytes_per_second');
      if (rate === 0) throw new Error('action.bytes_per_second must be at least 1');
      action = { type: 'trickle', after_bytes: nonNegInt(a.after_bytes, 'after_bytes', 0), bytes_per_second: rate };
      break;
    }
    case 'expire_next_url':
      if (spec.role === 'storage') throw new Error('expire_next_url applies to role api or download');
      action = { type: 'expire_next_url' };
      break;
    case 'ignore_range':
      if (spec.role !== 'storage') throw new Error('ignore_range applies to role storage');
      action = { type: 'ignore_range' };
      break;
    case 'etag':
      if (spec.role !== 'storage') throw new Error('etag applies to role storage');
      if (a.value !== undefined && typeof a.value !== 'string') throw new Error('action.value must be a string');
      action = { type: 'etag', value: a.value === undefined ? ZERO_ETAG : a.value };
      break;
    default:
      throw new Error('action.type must be one of status, reset, delay, stall, truncate, trickle, expire_next_url, etag, ignore_range');
  }
  return {
    role: spec.role,
    method: spec.method === undefined ? null : spec.method.toUpperCase(),
    path_prefix: spec.path_prefix === undefined ? null : spec.path_prefix,
    range_prefix: spec.range_prefix === undefined ? null : spec.range_prefix,
    times,
    action,
  };
}

class Faults {
  constructor() {
    this.rules = [];
    this.nextId = 1;
  }

  add(spec) {
    const rule = { id: this.nextId++, ...normaliseRule(spec), used: 0 };
    this.rules.push(rule);
    return rule;
  }

  clear() {
    const n = this.rules.length;
    this.rules = [];
    return n;
  }

  remove(id) {
    const before = this.rules.length;
    this.rules = this.rules.filter((r) => r.id !== id);
    return before !== this.rules.length;
  }

  /**
   * Use up the first rule that matches this request. With `lazyType`, only rules of that
   * action type are considered; without it, only the actions applied on arrival.
   */
  take(role, method, rawPath, decodedPath, lazyType, range) {
    const idx = this.rules.findIndex((r) =>
      r.role === role &&
      (r.range_prefix === null || (typeof range === 'string' && range.startsWith(r.range_prefix))) &&
      (r.method === null || r.method === method) &&
      (r.path_prefix === null || rawPath.startsWith(r.path_prefix) || (decodedPath !== null && decodedPath.startsWith(r.path_prefix))) &&
      (lazyType ? r.action.type === lazyType : !LAZY.has(r.action.type)));
    if (idx < 0) return null;
    const rule = this.rules[idx];
    rule.used++;
    if (rule.times > 0 && rule.used >= rule.times) this.rules.splice(idx, 1);
    return rule.action;
  }
}

class RequestLog {
  constructor() { this.clear(); }
  clear() { this.entries = { api: [], download: [], storage: [] }; }
  add(role, entry) { this.entries[role].push(entry); return entry; }
}

module.exports = { Faults, RequestLog, normaliseRule, ROLES };
