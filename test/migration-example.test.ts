/**
 * examples/migrate.mjs, run against the build as a user would: its guest's pseudo-random numbers are
 * exact 32-bit arithmetic (issue #11: computed in doubles they fell into a cycle after ~15.6k steps
 * and RAM stopped changing), and the example migrates and reports identical RAM on both ends.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';

const built = existsSync(new URL('../dist/migration/precopy.js', import.meta.url));
if (!built && process.env.CI) throw new Error('dist/ is missing on CI: run npm run build first');
const skip = built ? false : 'dist/ is not built (npm run build)';

describe('examples/migrate.mjs', { skip }, () => {
  it('steps its LCG modulo 2^32 exactly, as BigInt arithmetic does', async () => {
    // A computed specifier: the example is plain JavaScript without type declarations.
    const example = new URL('../examples/migrate.mjs', import.meta.url).href;
    const { nextSeed } = (await import(example)) as { nextSeed: (s: number) => number };
    let s = 1;
    let b = 1n;
    const seen = new Set<number>();
    for (let i = 0; i < 100_000; i++) {
      s = nextSeed(s);
      b = (b * 1103515245n + 12345n) % 2n ** 32n;
      assert.equal(s, Number(b), `step ${i + 1}`);
      seen.add(s);
    }
    // The full-period generator repeats no value within 100k steps.
    assert.equal(seen.size, 100_000);
    assert.equal(nextSeed(0), 12345);
    assert.equal(nextSeed(1), 1103527590);
  });

  it('migrates while the guest writes and reports identical RAM on both ends', () => {
    const r = spawnSync(process.execPath, ['examples/migrate.mjs'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /RAM checksum: +source (\w+), destination \1 -> identical/);
    assert.match(r.stdout, /guest writes: +[1-9]\d* during the migration/);
  });
});
