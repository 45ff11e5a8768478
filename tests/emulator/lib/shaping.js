'use strict';
// Link shaping for the download and storage hosts: each connection's responses are held
// to a rate (a token bucket per TCP connection, so keep-alive requests share it) and each
// response waits a fixed time before its first byte, as a far server or a CDN would.

const { sleep } = require('./util');

const SHAPED_ROLES = ['download', 'storage'];
// The bucket holds at most this much time's worth of bytes: an idle connection cannot
// save up more than a short burst.
const BURST_SECONDS = 0.05;
const MAX_RATE = 2 ** 40;
const MAX_DELAY_MS = 600000;

/** Checks one role's settings ({rate?, first_byte_ms?}); returns the normalised form (throws Error). */
function normaliseShape(spec, where) {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error(`${where} must be an object`);
  for (const k of Object.keys(spec)) {
    if (k !== 'rate' && k !== 'first_byte_ms') throw new Error(`${where}: unknown setting '${k}' (rate, first_byte_ms)`);
  }
  const out = {};
  if (spec.rate !== undefined) {
    if (!Number.isInteger(spec.rate) || spec.rate < 0 || spec.rate > MAX_RATE) throw new Error(`${where}.rate must be bytes per second, 0 (unlimited) to 2^40`);
    out.rate = spec.rate;
  }
  if (spec.first_byte_ms !== undefined) {
    if (!Number.isInteger(spec.first_byte_ms) || spec.first_byte_ms < 0 || spec.first_byte_ms > MAX_DELAY_MS) {
      throw new Error(`${where}.first_byte_ms must be 0 to ${MAX_DELAY_MS}`);
    }
    out.first_byte_ms = spec.first_byte_ms;
  }
  return out;
}

class Shaping {
  constructor(initial = {}) {
    this.clear();
    this.set(initial);
  }

  clear() {
    this.roles = {};
    for (const r of SHAPED_ROLES) this.roles[r] = { rate: 0, first_byte_ms: 0 };
  }

  /** Merges {role: {rate?, first_byte_ms?}} into the settings; all or nothing (throws Error). */
  set(spec) {
    if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error('shaping must be an object keyed by role');
    const next = {};
    for (const [role, s] of Object.entries(spec)) {
      if (!SHAPED_ROLES.includes(role)) throw new Error(`shaping applies to roles ${SHAPED_ROLES.join(' and ')}, not '${role}'`);
      next[role] = normaliseShape(s, role);
    }
    for (const [role, s] of Object.entries(next)) Object.assign(this.roles[role], s);
  }

  view() { return JSON.parse(JSON.stringify(this.roles)); }

  /** The settings of a role, or null when nothing is shaped there. */
  of(role) {
    const s = this.roles[role];
    return s && (s.rate > 0 || s.first_byte_ms > 0) ? s : null;
  }
}

/**
 * Waits until `n` more bytes may leave on `socket` at `rate` bytes per second. The bucket
 * lives on the socket: it is the connection that is limited, whatever request it carries.
 */
async function takeTokens(socket, rate, n) {
  const burst = Math.max(1, rate * BURST_SECONDS);
  let b = socket.skafosBucket;
  const now = () => Number(process.hrtime.bigint()) / 1e9;
  if (!b || b.rate !== rate) b = socket.skafosBucket = { rate, tokens: burst, last: now() };
  for (;;) {
    const t = now();
    b.tokens = Math.min(burst, b.tokens + (t - b.last) * rate);
    b.last = t;
    if (b.tokens >= n) {
      b.tokens -= n;
      return;
    }
    await sleep(Math.max(1, Math.ceil(((n - b.tokens) / rate) * 1000)));
  }
}

/** The largest write that takes tokens at once at `rate`: a fraction of the burst. */
function pieceSize(rate) {
  return Math.max(1, Math.min(64 * 1024, Math.floor(rate * BURST_SECONDS)));
}

module.exports = { Shaping, SHAPED_ROLES, normaliseShape, takeTokens, pieceSize };
