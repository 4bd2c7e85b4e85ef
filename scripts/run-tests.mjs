#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with Node's own test runner (TypeScript through tsx).
// Node 20's --test takes no globs, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

function find(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) find(p, out);
    else if (e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

// Many tests compare with the project's shared QEMU dumps beside the clone; say so once, up front,
// rather than leaving it to each failing test.
const SHARED = '../shared/fixtures/qemu-7.2';
if (!existsSync(SHARED)) {
  process.stderr.write(
    `run-tests: ${resolve(SHARED)} is missing: the tests that compare with the shared QEMU 7.2 dumps ` +
      'will fail. Put the shared fixtures folder there (../shared/fixtures/qemu-7.2 beside the clone).\n',
  );
}

const filter = process.argv.slice(2);
let files = [...find('src', []), ...find('test', [])].sort();
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
