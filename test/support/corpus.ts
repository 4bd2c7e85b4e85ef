/**
 * @module test/support/corpus
 * Reads the captured corpus archives (`fixtures/corpus/qemu-VERSION.tar.br`, written by
 * scripts/capture-corpus.mjs): a ustar file compressed with brotli, so that Node reads it with no
 * other tool.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';

/** One captured machine: its files by name (`mtree-D.txt`, `flat.txt`, `cmdline.txt`, ...). */
export interface CorpusCase {
  /** QEMU version of the archive, e.g. `7.2`. */
  readonly version: string;
  /** Path inside the archive, e.g. `aarch64/virt` or `variants/q35-bridges`. */
  readonly name: string;
  readonly files: ReadonlyMap<string, string>;
}

/** Splits a ustar archive into its regular files. */
export function readTar(tar: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  for (let off = 0; off + 512 <= tar.length; ) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (at: number, len: number) => header.toString('latin1', at, at + len).replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    const name = (prefix ? `${prefix}/` : '') + field(0, 100);
    const size = Number.parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    off += 512;
    if (type === '0' || type === '')
      out.set(name.replace(/^\.\//, ''), tar.toString('utf8', off, off + size));
    off += Math.ceil(size / 512) * 512;
  }
  return out;
}

/** The corpus archives present in `dir` (version → path). */
export function corpusArchives(dir = 'fixtures/corpus'): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).sort()) {
    const m = /^qemu-(.+)\.tar\.br$/.exec(f);
    if (m) out.set(m[1]!, join(dir, f));
  }
  return out;
}

/** Every captured machine of one archive, sorted by name, plus the archive's `skipped.tsv`. */
export function loadCorpus(version: string, path: string): { cases: CorpusCase[]; skipped: string } {
  const files = readTar(brotliDecompressSync(readFileSync(path)));
  const byCase = new Map<string, Map<string, string>>();
  for (const [p, text] of files) {
    const k = p.lastIndexOf('/');
    if (k < 0) continue;
    const dir = p.slice(0, k);
    let m = byCase.get(dir);
    if (!m) {
      m = new Map();
      byCase.set(dir, m);
    }
    m.set(p.slice(k + 1), text);
  }
  const cases = [...byCase]
    .filter(([, m]) => m.has('mtree-D.txt') && m.has('flat.txt'))
    .map(([name, m]) => ({ version, name, files: m }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { cases, skipped: files.get('skipped.tsv') ?? '' };
}
