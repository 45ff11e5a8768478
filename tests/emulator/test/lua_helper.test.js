'use strict';
// Keeps tests/helpers/emulator.lua (the fixture busted specs use) working: runs a Lua
// script that drives every method of it, from a directory other than the repository.

const { it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const os = require('os');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..', '..', '..');
const lua = spawnSync('lua5.4', ['-e', 'require "cjson"'], { encoding: 'utf8' });
const skip = lua.error || lua.status !== 0 ? 'lua5.4 with cjson is not installed' : false;

it('the Lua helper starts, drives, restarts and stops the emulator', { skip }, () => {
  const r = spawnSync('lua5.4', [path.join(root, 'tests/emulator/test-support/helper_check.lua'), root], {
    cwd: os.tmpdir(), encoding: 'utf8', timeout: 60000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ok');
});
