#!/usr/bin/env node
/**
 * Generates the table of region names QEMU creates, per kind, from a QEMU source tree: every
 * `memory_region_init*()` call (and `create_unimplemented_device()`, which makes an I/O region)
 * whose name argument is a string literal, a `#define`d string, or a local built just before with
 * `g_strdup_printf`/`snprintf` (its format becomes a pattern). The rebuild uses it to tell, from the
 * tree text alone, an `i/o` container (`memory_region_init`) from a terminating I/O region
 * (`memory_region_init_io`, `_iommu`, `_rom_device` out of romd mode), and which aliases QEMU
 * makes read-only (`memory_region_set_readonly` on the alias right after creating it).
 *
 *   node scripts/gen-mtree-names.mjs SRC_DIR VERSION [FROM]   → src/mtree/names/qemu-VERSION.ts
 *
 * FROM, when the tree is not the release itself, says in the generated header what it is.
 *
 * 7.2: SRC_DIR=/work/src/qemu-7.2+dfsg (Debian 12 `apt-get source qemu`);
 * 10.0: `apt-get source qemu` inside the trixie chroot of scripts/make-debian-chroot.sh.
 * 11.1: Debian's mirror serves sid's 11.1.3 binaries but not their source (`apt-get source` gets
 * 404), and the `qemu/qemu` GitHub snapshot is too large to fetch here. The table is generated from
 * the newest upstream tree that could be had: commit b83371668192a705b878e909c5ae9c1233cbd5fb
 * (VERSION 11.0.50, 2026-06-19: a merge into QEMU's staging branch during the 11.1 development
 * cycle), the upstream base of the GitHub fork KnockKnockP/qemu-ia64, exported with
 * `git archive b83371668192 | tar -x -C SRC`. Regions added between that commit and the 11.1.3
 * release are missing from it (they fall back to the structural rule). Regenerate with FROM as in
 * the committed table's `Source:` line.
 */

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const [src, version, from] = process.argv.slice(2);
if (!src || !version) {
  console.error('usage: gen-mtree-names.mjs SRC_DIR VERSION [FROM]');
  process.exit(2);
}
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Calls that create a region: which argument (0-based) is the name, the kind they make, and which
 * argument is the size.
 */
const CALLS = {
  memory_region_init: [2, 'container', 3],
  memory_region_init_io: [4, 'io', 5],
  memory_region_init_iommu: [4, 'io', 5],
  memory_region_init_rom_device: [4, 'io', 5],
  memory_region_init_rom_device_nomigrate: [4, 'io', 5],
  create_unimplemented_device: [0, 'io', 2],
  aspeed_mmio_map_unimplemented: [2, 'io', 4],
  memory_region_init_alias: [2, 'alias', -1],
};

function walk(dir, out) {
  for (const e of readdirSync(dir)) {
    if (e.startsWith('.') || e === 'tests' || e === 'roms' || e === 'debian') continue;
    const p = join(dir, e);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (/\.[ch]$/.test(e)) out.push(p);
  }
  return out;
}
const files = walk(src, []);

// `#define TYPE_FOO "foo"` anywhere: names are often given by such macros. Numbers too (sizes), per
// file, since their names repeat with other values across QEMU.
const defines = new Map();
const numberDefines = new Map(); // file → Map(name → bigint)
for (const f of files) {
  const text = readFileSync(f, 'latin1');
  for (const m of text.matchAll(/^#define\s+(\w+)\s+("(?:[^"\\]|\\.)*"(?:\s*"(?:[^"\\]|\\.)*")*)\s*$/gm)) {
    defines.set(m[1], m[2]);
  }
  const nums = new Map();
  for (const m of text.matchAll(
    /^#define\s+(\w+)\s+\(?\s*(0[xX][0-9a-fA-F]+|[1-9]\d*|0)[uUlL]*\s*\)?\s*$/gm,
  )) {
    nums.set(m[1], BigInt(m[2]));
  }
  numberDefines.set(f, nums);
}

const UNITS = { KiB: 1n << 10n, MiB: 1n << 20n, GiB: 1n << 30n };
/** A size argument's value: a number, a number `#define`d in the same file, or `N * KiB`; else null. */
function sizeOf(expr, file) {
  const nums = numberDefines.get(file);
  const one = (t) => {
    const x = t
      .trim()
      .replace(/^\((.*)\)$/, '$1')
      .trim();
    const n = /^(0[xX][0-9a-fA-F]+|[1-9]\d*|0)[uUlL]*$/.exec(x);
    if (n) return BigInt(n[1]);
    if (nums.has(x)) return nums.get(x);
    return UNITS[x] ?? null;
  };
  let v = 1n;
  for (const factor of expr.split('*')) {
    const f = one(factor);
    if (f === null) return null;
    v *= f;
  }
  return v;
}

/** The arguments of the call whose '(' is at `open`, split at top-level commas. */
function callArgs(text, open) {
  const args = [];
  let depth = 0;
  let cur = '';
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== ch) j += text[j] === '\\' ? 2 : 1;
      cur += text.slice(i, j + 1);
      i = j;
      continue;
    }
    if (ch === '(') {
      depth++;
      if (depth === 1) continue;
    } else if (ch === ')') {
      depth--;
      if (depth === 0) {
        args.push(cur.trim());
        return args;
      }
    } else if (ch === ',' && depth === 1) {
      args.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  return null;
}

/** A C string expression (literals, macros, concatenation) as its text, or null. */
function literal(expr) {
  let rest = expr.trim();
  let out = '';
  while (rest) {
    const m = /^"((?:[^"\\]|\\.)*)"\s*/.exec(rest);
    if (m) {
      out += m[1].replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      rest = rest.slice(m[0].length);
      continue;
    }
    const id = /^(\w+)\s*/.exec(rest);
    if (id && defines.has(id[1])) {
      const v = literal(defines.get(id[1]));
      if (v === null) return null;
      out += v;
      rest = rest.slice(id[0].length);
      continue;
    }
    return null;
  }
  return out;
}

/** A printf format as a pattern: conversions match what they can print. */
function formatPattern(fmt) {
  let re = '';
  for (let i = 0; i < fmt.length; i++) {
    const ch = fmt[i];
    if (ch !== '%') {
      re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      continue;
    }
    const m = /^%[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t)?([diouxXcsp%])/.exec(fmt.slice(i));
    if (!m) return null;
    i += m[0].length - 1;
    const conv = m[1];
    if (conv === '%') re += '%';
    else if (conv === 's') re += '.*';
    else if (conv === 'c') re += '.';
    else re += '[0-9a-fA-Fx-]+';
  }
  return re;
}

/** Formats with PRIx64 and friends: `"foo-%" PRIx64` → `"foo-%lx"`. */
function formatOf(expr) {
  return literal(expr.replace(/\bPRI([diouxX])(8|16|32|64|PTR)\b/g, '"%l$1"'));
}

const kinds = new Map(); // name → Set(kind)
const patterns = new Map(); // regex source → Set(kind)
const readonlyAliases = new Set();
const blockContainers = new Set();
const sizes = new Map(); // name → Set('SIZE/kind', or null for a size not known)
const patternSizes = new Map(); // pattern → the same

/** The names of the concrete QOM types a file defines (`TypeInfo` initializers, one or an array). */
function typeNames(text) {
  const out = [];
  for (const m of text.matchAll(/\bTypeInfo\s+\w+\s*(?:\[\s*\])?\s*=\s*\{/g)) {
    // The initializer's text up to its closing brace, then each `{ ... }` element in it.
    let depth = 0;
    let end = m.index + m[0].length - 1;
    for (; end < text.length; end++) {
      if (text[end] === '{') depth++;
      else if (text[end] === '}' && --depth === 0) break;
    }
    const body = text.slice(m.index + m[0].length, end);
    const elements = /^\s*\{/.test(body) ? body.split(/\}\s*,?\s*\{/) : [body];
    for (const el of elements) {
      if (/\.abstract\s*=\s*true/.test(el)) continue;
      const n = /\.name\s*=\s*([^,\n]+?)\s*,/.exec(el);
      const name = n && literal(n[1]);
      if (name) out.push(name);
    }
  }
  return out;
}
const add = (map, key, kind) => {
  const s = map.get(key);
  if (s) s.add(kind);
  else map.set(key, new Set([kind]));
};
const callRe = new RegExp(`\\b(${Object.keys(CALLS).join('|')})\\s*\\(`, 'g');
for (const f of files.filter((p) => p.endsWith('.c'))) {
  const text = readFileSync(f, 'latin1');
  const fileContainers = [];
  let typeNamedIo = false;
  for (const m of text.matchAll(callRe)) {
    const [argIndex, kind, sizeIndex] = CALLS[m[1]];
    const args = callArgs(text, m.index + m[0].length - 1);
    if (!args || args.length <= argIndex) continue;
    const nameExpr = args[argIndex];
    let name = literal(nameExpr);
    let pattern = null;
    // Named after its owner's QOM type (object_get_typename), directly or through a local set just
    // before: see the register blocks below.
    if (
      name === null &&
      kind === 'io' &&
      (/^object_get_typename\s*\(/.test(nameExpr) ||
        (/^\w+$/.test(nameExpr) &&
          new RegExp(`\\b${nameExpr}\\s*=\\s*object_get_typename\\s*\\(`).test(
            text.slice(Math.max(0, m.index - 3000), m.index),
          )))
    ) {
      typeNamedIo = true;
    }
    if (name === null && /^\w+$/.test(nameExpr)) {
      // A local built shortly before: `x = g_strdup_printf("fmt", ...)` or `snprintf(x, n, "fmt", ...)`.
      const before = text.slice(Math.max(0, m.index - 3000), m.index);
      const esc = nameExpr;
      const g = [...before.matchAll(new RegExp(`\\b${esc}\\s*=\\s*g_strdup_printf\\s*\\(`, 'g'))].pop();
      const s = [...before.matchAll(new RegExp(`\\bsnprintf\\s*\\(\\s*${esc}\\s*,`, 'g'))].pop();
      const hit = g && (!s || g.index > s.index) ? g : s;
      if (hit) {
        const open = before.indexOf('(', hit.index + hit[0].length - 1);
        const a = callArgs(before, open);
        const fmt = a && formatOf(hit === g ? a[0] : (a[2] ?? ''));
        if (fmt !== null && fmt !== undefined) {
          if (/%/.test(fmt.replace(/%%/g, ''))) pattern = formatPattern(fmt);
          else name = fmt;
        }
      }
    } else if (name === null) {
      const gm = /^g_strdup_printf\s*\(/.exec(nameExpr);
      const field = /^\w+\s*(?:->|\.)\s*(\w+)$/.exec(nameExpr);
      if (gm) {
        const a = callArgs(nameExpr, gm[0].length - 1);
        const fmt = a && formatOf(a[0]);
        if (fmt) pattern = formatPattern(fmt);
      } else if (field) {
        // A field (`dev->id`) that the same file sets with one `g_strdup_printf` format and nothing
        // else (astro.c names each Elroy by the `id` its elroy_init gives it).
        const sets = [...text.matchAll(new RegExp(`(?:->|\\.)\\s*${field[1]}\\s*=\\s*([^;]+);`, 'g'))];
        const fmts = new Set();
        for (const set of sets) {
          const gs = /^g_strdup_printf\s*\(/.exec(set[1].trim());
          const a = gs && callArgs(set[1].trim(), gs[0].length - 1);
          fmts.add((a && formatOf(a[0])) ?? null);
        }
        const fmt = fmts.size === 1 ? [...fmts][0] : null;
        if (fmt) pattern = formatPattern(fmt);
      }
    }
    if (kind === 'alias') {
      if (name === null) continue;
      // Read-only when the next statement makes the same expression read-only, unconditionally
      // (pam.c's `pam-rom`; x86.c's `isa-bios` is read-only only under a condition).
      const end = text.indexOf(';', m.index);
      const after = text.slice(end + 1, end + 400);
      const mrExpr = args[0].replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      if (new RegExp(`^\\s*memory_region_set_readonly\\s*\\(\\s*${mrExpr}\\s*,\\s*true`).test(after)) {
        readonlyAliases.add(name);
      }
      continue;
    }
    if (name !== null) add(kinds, name, kind);
    else if (pattern) add(patterns, pattern, kind);
    if (name !== null && kind === 'container') fileContainers.push(name);
    if (name !== null || pattern) {
      const size = args[sizeIndex] === undefined ? null : sizeOf(args[sizeIndex], f);
      add(
        name !== null ? sizes : patternSizes,
        name ?? pattern,
        size === null ? null : `${size.toString(16)}/${kind}`,
      );
    }
  }
  // hw/core/register.c register_init_block: a device's register block is an I/O region named
  // after the owning device's QOM type (object_get_typename); 10.0's CAN FD controller makes its
  // own the same way. Devices often name their own container after their type too, and put the
  // block inside it: such a container is listed.
  if (typeNamedIo || /\bregister_init_block(?:8|32|64)\s*\(\s*(?!DeviceState\b)/.test(text)) {
    const types = typeNames(text);
    for (const t of types) {
      add(kinds, t, 'io');
      add(sizes, t, null);
    }
    for (const c of fileContainers) if (types.includes(c)) blockContainers.add(c);
  }
}

// The enumerators of every `enum { ... }` in the headers and sources, with their values, so that
// a table indexed by them (`[FSL_IMX8MP_VPU] = {...}`) can be put in index order.
const enumValues = new Map();
for (const f of files) {
  const text = readFileSync(f, 'latin1');
  for (const m of text.matchAll(/\benum\s+\w*\s*\{([^}]*)\}/g)) {
    let v = -1n;
    for (const item of m[1].replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, '').split(',')) {
      const e = /^\s*(\w+)\s*(?:=\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_]\w*)))?\s*$/.exec(item);
      if (!e) break;
      if (e[2] !== undefined) v = BigInt(e[2]);
      else if (e[3] !== undefined && enumValues.has(e[3])) v = enumValues.get(e[3]);
      else if (e[3] !== undefined) break;
      else v += 1n;
      enumValues.set(e[1], v);
    }
  }
}

// Boards that create unimplemented devices in a loop over their memory map table
// (`for (i = 0; i < ARRAY_SIZE(map); i++) create_unimplemented_device(map[i].name, ...)`, the
// i.MX 8M boards): the devices are created, and so listed, in the table's index order. Each such
// table gives its names in that order.
const creationOrders = [];
for (const f of files.filter((p) => p.endsWith('.c'))) {
  const text = readFileSync(f, 'latin1');
  for (const m of text.matchAll(/\bfor\s*\(\s*(\w+)\s*=\s*0\s*;\s*\1\s*<\s*ARRAY_SIZE\s*\(\s*(\w+)\s*\)/g)) {
    const [, iv, table] = m;
    const body = text.slice(m.index, m.index + 4000);
    if (
      !new RegExp(`create_unimplemented_device\\s*\\(\\s*${table}\\s*\\[\\s*${iv}\\s*\\]\\.name`).test(body)
    )
      continue;
    const init = new RegExp(`\\b${table}\\s*\\[\\s*\\]\\s*=\\s*\\{`).exec(text);
    if (!init) continue;
    const entries = [];
    let ok = true;
    const from = init.index + init[0].length;
    const end = text.indexOf('\n};', from);
    for (const e of text.slice(from, end).matchAll(/\[\s*(\w+)\s*\]\s*=\s*\{[^}]*?"([^"]*)"\s*\}/g)) {
      if (!enumValues.has(e[1])) ok = false;
      else entries.push([enumValues.get(e[1]), e[2]]);
    }
    // Entries the loop's switch skips (`case A:`, `case A ... B:`) are devices made elsewhere.
    const skipped = [];
    for (const c of body.matchAll(/\bcase\s+(\w+)\s*(?:\.\.\.\s*(\w+)\s*)?:/g)) {
      const lo = enumValues.get(c[1]);
      const hi = c[2] === undefined ? lo : enumValues.get(c[2]);
      if (lo === undefined || hi === undefined) ok = false;
      else skipped.push([lo, hi]);
    }
    const made = entries.filter(([v]) => !skipped.some(([lo, hi]) => lo <= v && v <= hi));
    entries.length = 0;
    entries.push(...made);
    if (!ok || entries.length < 2) continue;
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    creationOrders.push(entries.map((e) => e[1]));
  }
}

const sortedEntries = (map) => [...map].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
// Patterns with fewer than 3 literal characters (`%s%d`) say too little to be trusted.
for (const k of [...patterns.keys()]) {
  if (k.replace(/\.\*|\[0-9a-fA-Fx-\]\+|\\/g, '').length < 3) patterns.delete(k);
}
// A literal name that a format of the other kind prints (typhoon.c's I/O `pci0-io`, mv64361.c's
// containers `pci%d-io`) is made with both kinds: it takes the format's kinds and sizes. Only
// formats of numbers: a `%s` can print about anything.
for (const [pattern, pk] of patterns) {
  if (pattern.includes('.*')) continue;
  const re = new RegExp(`^(?:${pattern})$`, 's');
  for (const [n, nk] of kinds) {
    if (![...pk].some((k) => !nk.has(k)) || !re.test(n)) continue;
    for (const k of pk) nk.add(k);
    for (const e of patternSizes.get(pattern) ?? [null]) add(sizes, n, e);
  }
}
const only = (map, k) =>
  sortedEntries(map)
    .filter(([, s]) => s.size === 1 && s.has(k))
    .map(([n]) => n);
const both = (map) =>
  sortedEntries(map)
    .filter(([, s]) => s.size > 1)
    .map(([n]) => n);
/**
 * A name made with both kinds, where every creation has a known size and the sizes of the two
 * kinds differ, is settled by its size: `NAME/SIZE` (hex) per kind.
 */
function bySize(kind) {
  const out = [];
  for (const n of both(kinds)) {
    const s = sizes.get(n);
    if (!s || s.has(null)) continue;
    const kindsOf = new Map();
    for (const e of s) add(kindsOf, e.split('/')[0], e.split('/')[1]);
    for (const [size, k] of kindsOf) if (k.size === 1 && k.has(kind)) out.push(`${n}/${size}`);
  }
  return out.sort();
}
const out = `/**
 * @module mtree/names/qemu-${version}
 * Generated by scripts/gen-mtree-names.mjs from the QEMU ${version} source; do not edit. Region names
 * that QEMU ${version} creates with \`memory_region_init\` (containers) and with an I/O kind
 * (\`memory_region_init_io\`, \`_iommu\`, \`_rom_device\`, \`create_unimplemented_device\`), names
 * of aliases it makes read-only, and the same for names built with a printf format (as patterns).
 * Names created with both kinds are listed in \`ambiguous\`.${from ? `\n * Source: ${from}.` : ''}
 */

import type { QemuNameTable } from './table.js';

export const QEMU_${version.replace(/\W/g, '_')}_NAMES: QemuNameTable = {
  version: '${version}',
  containers: ${JSON.stringify(only(kinds, 'container'))},
  io: ${JSON.stringify(only(kinds, 'io'))},
  ambiguous: ${JSON.stringify(both(kinds))},
  containerPatterns: ${JSON.stringify(only(patterns, 'container'))},
  ioPatterns: ${JSON.stringify(only(patterns, 'io'))},
  readonlyAliases: ${JSON.stringify([...readonlyAliases].sort())},
  blockContainers: ${JSON.stringify([...blockContainers].sort())},
  creationOrders: ${JSON.stringify(creationOrders)},
  containersBySize: ${JSON.stringify(bySize('container'))},
  ioBySize: ${JSON.stringify(bySize('io'))},
};
`;
const file = join(repo, `src/mtree/names/qemu-${version}.ts`);
writeFileSync(file, out);
// In the repository's own format, so that regenerating gives the committed file back.
execFileSync('npx', ['biome', 'format', '--write', file], { cwd: repo, stdio: 'ignore' });
console.log(
  `${file}: ${only(kinds, 'container').length} containers, ${only(kinds, 'io').length} i/o, ${both(kinds).length} ambiguous, ${patterns.size} patterns, ${readonlyAliases.size} read-only aliases`,
);
