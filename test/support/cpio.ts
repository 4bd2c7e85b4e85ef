/**
 * @module test/support/cpio
 * Writes an initramfs: a cpio archive in the "newc" format the Linux kernel unpacks (magic 070701,
 * ASCII-hex header fields, names and data padded to 4 bytes, closed by TRAILER!!!).
 */

/** One archive member: a directory, or a file with its mode bits and content. */
export type CpioEntry = { path: string; dir: true } | { path: string; mode: number; data: Uint8Array };

/** The archive of `entries`, in order (directories before what they hold). */
export function newcArchive(entries: CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    size += b.length;
    const pad = (4 - (size % 4)) % 4;
    if (pad) {
      parts.push(new Uint8Array(pad));
      size += pad;
    }
  };
  const enc = new TextEncoder();
  let ino = 1;
  const member = (name: string, mode: number, data: Uint8Array, nlink: number) => {
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    const nameBytes = enc.encode(`${name}\0`);
    const fields = [ino++, mode, 0, 0, nlink, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
    const header = enc.encode(`070701${fields.map(hex).join('')}`);
    const hn = new Uint8Array(header.length + nameBytes.length);
    hn.set(header);
    hn.set(nameBytes, header.length);
    push(hn);
    if (data.length) push(data);
  };
  for (const e of entries) {
    if ('dir' in e) member(e.path, 0o040755, new Uint8Array(0), 2);
    else member(e.path, 0o100000 | e.mode, e.data, 1);
  }
  member('TRAILER!!!', 0, new Uint8Array(0), 1);
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
