/**
 * @module cli/text
 * Making text from outside (file contents, paths, QMP replies, option values) safe to print in the
 * one line an error gets, and reading input files with one-line errors whatever the file system says.
 */

import { readFile } from 'node:fs/promises';
import { MemtreeError } from '../core/errors.js';

/** Longest error line memtree prints; longer text from outside is cut with an ellipsis. */
export const MAX_ERROR_LINE = 400;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\x1b': '\\e' };

/**
 * `text` with every control character escaped (newlines, ESC, the C1 range, line separators and
 * bidirectional overrides), so that it cannot split an error line or steer the terminal, and cut to
 * `max` characters.
 */
export function oneLine(text: string, max = MAX_ERROR_LINE): string {
  let out = '';
  let i = 0;
  for (; i < text.length && out.length < max; i++) {
    const ch = text[i]!;
    const code = ch.charCodeAt(0);
    if (!isControl(code)) {
      out += ch;
      continue;
    }
    const named = NAMED[ch];
    if (named) out += named;
    else out += code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  }
  return i < text.length || out.length > max ? `${out.slice(0, max - 1)}…` : out;
}

/** C0, DEL, C1, line/paragraph separators, bidi embeddings/overrides/isolates and the BOM. */
function isControl(c: number): boolean {
  return (
    c < 0x20 ||
    (c >= 0x7f && c <= 0x9f) ||
    c === 0x2028 ||
    c === 0x2029 ||
    (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069) ||
    c === 0xfeff
  );
}

/** What a failed file-system call means, in a few words (without Node's "ENOENT: ..." prefix). */
export function describeFsError(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EIO':
      return 'input/output error';
    case 'ELOOP':
      return 'too many symbolic links';
    case 'ENAMETOOLONG':
      return 'file name too long';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many open files';
    default: {
      const msg = String(e.message ?? e).replace(/^[A-Z]+: /, '');
      return e.code ? `${msg} (${e.code})` : msg;
    }
  }
}

/** True for an error Node's file system or sockets threw (it has an errno code and a syscall). */
export function isSystemError(e: unknown): e is NodeJS.ErrnoException {
  return (
    e instanceof Error &&
    typeof (e as NodeJS.ErrnoException).code === 'string' &&
    typeof (e as NodeJS.ErrnoException).syscall === 'string'
  );
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes the bytes of a dump. QEMU's `info mtree` output is UTF-8 text without NUL bytes, so
 * anything else (an image, a migration stream, a binary) is refused here with one short line rather
 * than parsed and quoted back.
 */
export function decodeDumpText(bytes: Uint8Array, name: string): string {
  const probe = bytes.subarray(0, 65536);
  let text: string;
  try {
    if (probe.includes(0)) throw new Error('NUL');
    text = utf8.decode(bytes);
  } catch {
    throw new MemtreeError('ERR_IO', `${name}: binary data, not the text of an \`info mtree\` dump`);
  }
  if (text.trim() === '')
    throw new MemtreeError('ERR_IO', `${name}: empty input, not an \`info mtree\` dump`);
  return text;
}

function readStdin(): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks)));
    process.stdin.on('error', reject);
  });
}

/** Reads a dump file, or standard input for `-`; every failure is a one-line `ERR_IO`. */
export async function readDumpFile(path: string): Promise<string> {
  const name = path === '-' ? '<stdin>' : path;
  let bytes: Uint8Array;
  try {
    bytes = path === '-' ? await readStdin() : await readFile(path);
  } catch (e) {
    throw new MemtreeError('ERR_IO', `cannot read ${name}: ${describeFsError(e as NodeJS.ErrnoException)}`);
  }
  return decodeDumpText(bytes, name);
}
