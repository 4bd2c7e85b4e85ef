/**
 * @module test/support/conformance
 * The checks of test/conformance.test.ts for one captured machine, in-process (the corpus has
 * hundreds of machines; a CLI process each would take minutes).
 */

import { compareMtreeText } from '../../src/mtree/compare.js';
import { parseFlatText, parseMtreeText } from '../../src/mtree/parse.js';
import { formatFlat, formatMtree } from '../../src/mtree/print.js';
import { rebuild } from '../../src/mtree/rebuild.js';

/** The modes: what is rebuilt from what, and which QEMU output it must reproduce. */
export type Mode = 'flat' | 'mtree-D' | 'mtree' | 'flat-d' | 'text-only';
export const MODES: readonly Mode[] = ['flat', 'mtree-D', 'mtree', 'flat-d', 'text-only'];

/** Compares canonically; returns null when equal, else the first difference (or the error). */
export function checkMode(files: ReadonlyMap<string, string>, mode: Mode, version = '7.2'): string | null {
  const get = (f: string) => files.get(f);
  const D = get('mtree-D.txt')!;
  const flatText = get('flat.txt')!;
  try {
    const dump = parseMtreeText(D, 'mtree-D.txt');
    const flat = parseFlatText(flatText, 'flat.txt');
    let ours: string;
    let qemu: string;
    switch (mode) {
      case 'flat':
        ours = formatFlat(rebuild(dump, flat).system);
        qemu = flatText;
        break;
      case 'mtree-D':
        ours = formatMtree(rebuild(dump, flat).system, { disabled: true });
        qemu = D;
        break;
      case 'mtree': {
        const t = get('mtree.txt');
        if (t === undefined) return null;
        ours = formatMtree(rebuild(parseMtreeText(t, 'mtree.txt'), flat).system);
        qemu = t;
        break;
      }
      case 'flat-d': {
        const t = get('flat-d.txt');
        if (t === undefined) return null;
        const fd = parseFlatText(t, 'flat-d.txt');
        const r = rebuild(dump, fd);
        ours = formatFlat(r.system, { dispatch: true, pageBits: r.pageBits ?? 12 });
        qemu = t.replace(/ \[MRU\]/g, '');
        // Whether an i/o region is an IOMMU is not in the dumps: compare the rest.
        if (qemu.includes(' [iommu]')) {
          qemu = qemu.replace(/ \[iommu\]/g, '');
          ours = ours.replace(/ \[iommu\]/g, '');
        }
        break;
      }
      case 'text-only':
        ours = formatFlat(rebuild(dump, undefined, { qemu: version }).system);
        // The KVM marks come from the accelerator, not from the tree: not expected from the text.
        qemu = flatText.replace(/( KVM)+$/gm, '');
        break;
    }
    const r = compareMtreeText(ours, qemu);
    return r.equal ? null : (r.firstDifference ?? 'different');
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}
