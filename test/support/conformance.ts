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
      case 'flat': {
        const r = rebuild(dump, flat);
        ours = formatFlat(r.system, { qemu: r.qemu });
        qemu = flatText;
        break;
      }
      case 'mtree-D': {
        const r = rebuild(dump, flat);
        ours = formatMtree(r.system, { disabled: true, qemu: r.qemu });
        qemu = D;
        break;
      }
      case 'mtree': {
        const t = get('mtree.txt');
        if (t === undefined) return null;
        const r = rebuild(parseMtreeText(t, 'mtree.txt'), flat);
        ours = formatMtree(r.system, { qemu: r.qemu });
        qemu = t;
        break;
      }
      case 'flat-d': {
        const t = get('flat-d.txt');
        if (t === undefined) return null;
        const fd = parseFlatText(t, 'flat-d.txt');
        const r = rebuild(dump, fd);
        ours = formatFlat(r.system, { dispatch: true, pageBits: r.pageBits ?? 12, qemu: r.qemu });
        qemu = t.replace(/ \[MRU\]/g, '');
        // Whether an i/o region is an IOMMU is not in the dumps: compare the rest.
        if (qemu.includes(' [iommu]')) {
          qemu = qemu.replace(/ \[iommu\]/g, '');
          ours = ours.replace(/ \[iommu\]/g, '');
        }
        break;
      }
      case 'text-only': {
        const r = rebuild(dump, undefined, { qemu: version });
        ours = formatFlat(r.system, { qemu: r.qemu });
        // The KVM marks come from the accelerator, not from the tree: not expected from the text.
        qemu = flatText.replace(/( KVM)+$/gm, '');
        break;
      }
    }
    const d = compareMtreeText(ours, qemu);
    return d.equal ? null : (d.firstDifference ?? 'different');
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}
