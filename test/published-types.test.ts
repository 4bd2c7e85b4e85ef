// The published types of memtree/core (dist/core/*.d.ts, @internal members stripped) expose no
// writable model state (issue #10): test/types/*.ts and test/types/published/*.ts mark every such
// write with `@ts-expect-error`, and here they are compiled against the emitted declarations, as a
// user's code would be. Needs `npm run build` (npm test runs it first).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';

const DIST = resolve('dist/core/index.d.ts');
const TSC = resolve('node_modules/typescript/bin/tsc');
const SOURCES = [resolve('test/types'), resolve('test/types/published')];

/** Copies the type tests into a fresh folder, importing `memtree/core` instead of the sources. */
function userProject(edit: (name: string, text: string) => string = (_, t) => t): string {
  const dir = mkdtempSync(join(tmpdir(), 'memtree-types-'));
  const files: string[] = [];
  for (const src of SOURCES) {
    for (const f of readdirSync(src)) {
      if (!f.endsWith('.ts')) continue;
      const text = readFileSync(join(src, f), 'utf8').replace(
        /from '(\.\.\/)+src\/core\/index\.js'/g,
        "from 'memtree/core'",
      );
      assert.match(text, /from 'memtree\/core'/, `${f} must import the core's public entry point`);
      writeFileSync(join(dir, f), edit(f, text));
      files.push(f);
    }
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        types: [],
        skipLibCheck: true,
        paths: { 'memtree/core': [DIST] },
      },
      files,
    }),
  );
  return dir;
}

function tsc(dir: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('published types of memtree/core (issue #10)', () => {
  it('refuse every write the type tests mark, against dist/core/*.d.ts', () => {
    assert.ok(existsSync(DIST), `${DIST} is missing: run \`npm run build\` first`);
    const dir = userProject();
    try {
      const r = tsc(dir);
      assert.equal(r.status, 0, `tsc reported:\n${r.out}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('would notice a write that compiles: the check is not vacuous', () => {
    assert.ok(existsSync(DIST), `${DIST} is missing: run \`npm run build\` first`);
    // Without its directive, the write to a setter-only field must be a type error (TS2540).
    const dir = userProject((name, text) =>
      name === 'internal-setters.ts'
        ? text.replace(/\/\/ @ts-expect-error (?=moving a block)[^\n]*\n/, '')
        : text,
    );
    try {
      const r = tsc(dir);
      assert.notEqual(r.status, 0);
      assert.match(r.out, /internal-setters\.ts\(\d+,\d+\): error TS2540: Cannot assign to 'offset'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
