#!/usr/bin/env node
'use strict';
// Command line of the Skafos emulator: parse options, start the three roles, print their
// URLs as one JSON line on stdout, stop cleanly on SIGTERM/SIGINT. See README.md.

const { Emulator } = require('./lib/emulator');
const { SeedError } = require('./lib/store');

const USAGE = `usage: node server.js --data DIR [--seed FILE] [--api-port N] [--download-port N]
                      [--storage-port N] [--url-ttl SECONDS] [--rate BYTES_PER_SECOND]
                      [--first-byte-ms MS] [--verbose]`;

function parseArgs(argv) {
  const opts = { ports: {}, urlTtl: 900, verbose: false, shape: {} };
  const intArg = (name, v, min, max) => {
    if (v === undefined || !/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      throw new Error(`${name} needs an integer between ${min} and ${max}`);
    }
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let value;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const next = () => (value !== undefined ? value : argv[++i]);
    switch (a) {
      case '--data': opts.dataDir = next(); break;
      case '--seed': opts.seedFile = next(); break;
      case '--api-port': opts.ports.api = intArg(a, next(), 0, 65535); break;
      case '--download-port': opts.ports.download = intArg(a, next(), 0, 65535); break;
      case '--storage-port': opts.ports.storage = intArg(a, next(), 0, 65535); break;
      case '--url-ttl': opts.urlTtl = intArg(a, next(), 1, 604800); break;
      case '--rate': opts.shape.rate = intArg(a, next(), 0, 2 ** 40); break;
      case '--first-byte-ms': opts.shape.first_byte_ms = intArg(a, next(), 0, 600000); break;
      case '--verbose': case '-v': opts.verbose = true; break;
      case '--help': case '-h':
        process.stderr.write(USAGE + '\n');
        process.exit(0);
        break;
      default: throw new Error(`unknown argument '${argv[i]}'`);
    }
  }
  if (!opts.dataDir) throw new Error('--data DIR is required');
  return opts;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`skafos-emulator: ${e.message}\n${USAGE}\n`);
    process.exit(2);
  }
  const log = opts.verbose ? (msg) => process.stderr.write(`[emulator] ${msg}\n`) : () => {};
  // --rate and --first-byte-ms shape both hosts that serve downloads
  const shaping = { download: { ...opts.shape }, storage: { ...opts.shape } };
  const emu = new Emulator({ dataDir: opts.dataDir, seedFile: opts.seedFile, ports: opts.ports, urlTtl: opts.urlTtl, shaping, log });
  let urls;
  try {
    urls = await emu.start();
  } catch (e) {
    process.stderr.write(`skafos-emulator: ${e instanceof SeedError ? 'bad seed: ' : ''}${e.message}\n`);
    process.exit(e instanceof SeedError ? 2 : 1);
  }
  let stopping = false;
  const stop = async (sig) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping`);
    await emu.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // One line, spaced like the documented example.
  process.stdout.write(`{${Object.entries(urls).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')}}\n`);
}

main();
