/**
 * @module cli/commands/serve
 * `memtree serve [DUMP...] [--port N] [--host ADDR] [--qmp SOCKET]`: a small local web server for the
 * viewer page (the Vite build in dist/viewer) and a JSON API that hands the page the dumps named on
 * the command line, or the memory map of a running QEMU fetched over QMP on every request. The page
 * parses and rebuilds the dumps itself, with the same core and mtree modules as the CLI.
 *
 * API: `GET /api/dumps` lists `{ dumps: [{id, label}], qmp: {label} | null }` (ids are readable URL
 * names made from the labels, e.g. `pc-512m`; the live label names the machine type); `GET /api/dumps/ID`
 * and `GET /api/qmp` return `{ label, mtree, flat }` (the `info mtree -D` and `info mtree -f` text).
 * With a live source (`memtree run --serve`), `/api/dumps` also names it under `live`, and
 * `GET /api/live` returns what the source reads at that moment (the same fields, and more).
 */

import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MemtreeError } from '../../core/errors.js';
import { isFlatText, parseFlatText, parseMtreeText } from '../../mtree/parse.js';
import { QmpClient } from '../../qmp/client.js';
import { type CliIo, type Command, UsageError } from '../command.js';

/** One dump the server hands out. */
export interface ServedDump {
  readonly id: string;
  readonly label: string;
  readonly mtree: string;
  readonly flat: string | null;
}

/** Options of {@link startViewerServer}. */
export interface ViewerServerOptions {
  readonly dumps: readonly ServedDump[];
  /** Port; 0 picks a free one. */
  readonly port: number;
  /** Address to bind; 127.0.0.1 unless the user asks otherwise. */
  readonly host: string;
  /** QMP socket of a running QEMU, read again on each request of `/api/qmp`. */
  readonly qmp?: string | null;
  /** Directory of the built page (default: dist/viewer of this package). */
  readonly root?: string;
  /** A machine running in this process, read again on each request of `/api/live`. */
  readonly live?: LiveSource | null;
}

/** What `GET /api/live` hands the page: the dump text of the moment, plus anything the source adds. */
export interface LiveReading {
  readonly label: string;
  readonly mtree: string;
  readonly flat: string;
  readonly [more: string]: unknown;
}

/** A machine in this process that the viewer shows live (see `memtree run --serve`). */
export interface LiveSource {
  readonly label: string;
  /** Called on each request; must not block for long, since the machine shares the thread. */
  read(): LiveReading;
}

/** A running viewer server. */
export interface ViewerServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

/** The built page: dist/viewer next to dist/cli when installed, or the repo's dist/viewer under tsx. */
export function findViewerRoot(): string | null {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const rel of ['../../viewer', '../../../dist/viewer']) {
    const dir = resolve(here, rel);
    // src/viewer holds the page's source, which has no assets/ (under tsx, ../../viewer is that).
    if (existsSync(join(dir, 'index.html')) && existsSync(join(dir, 'assets'))) return dir;
  }
  return null;
}

/**
 * Reads the DUMP arguments. A DUMP is a file with `info mtree -D` output (possibly followed by the
 * `info mtree -f` output), or a directory holding `mtree-D.txt` (or `mtree.txt`) and optionally
 * `flat.txt`, as in the fixtures. A file of `info mtree -f` output pairs with the dump before it.
 */
export async function readDumps(paths: readonly string[], io: CliIo): Promise<ServedDump[]> {
  const out: { label: string; mtree: string; flat: string | null }[] = [];
  for (const p of paths) {
    if (p !== '-' && existsSync(p) && statSync(p).isDirectory()) {
      const tree = ['mtree-D.txt', 'mtree.txt'].map((f) => join(p, f)).find((f) => existsSync(f));
      if (!tree) throw new MemtreeError('ERR_IO', `${p}: no mtree-D.txt or mtree.txt in this directory`);
      const flatPath = join(p, 'flat.txt');
      out.push({
        label: basename(resolve(p)),
        mtree: await io.readText(tree),
        flat: existsSync(flatPath) ? await io.readText(flatPath) : null,
      });
      continue;
    }
    const text = await io.readText(p);
    if (isFlatText(text)) {
      const prev = out[out.length - 1];
      if (!prev || prev.flat !== null) {
        throw new UsageError(`${p} is an 'info mtree -f' dump; give the 'info mtree -D' dump before it`);
      }
      prev.flat = text;
      continue;
    }
    const at = text.search(/^FlatView #/m);
    // A capture folder's mtree-D.txt is named after its folder, which names the machine.
    const file = basename(p);
    const label =
      p === '-' ? 'standard input' : /^mtree(-D)?\.txt$/.test(file) ? basename(dirname(resolve(p))) : file;
    out.push({
      label,
      mtree: at >= 0 ? text.slice(0, at) : text,
      flat: at >= 0 ? text.slice(at) : null,
    });
  }
  // Fail now, with the line at fault, rather than in the browser.
  for (const d of out) {
    parseMtreeText(d.mtree, d.label);
    if (d.flat) parseFlatText(d.flat, `${d.label} (flat)`);
  }
  const ids = new Set<string>();
  return out.map((d) => {
    const base = urlName(d.label);
    let id = base;
    for (let k = 2; ids.has(id); k++) id = `${base}-${k}`;
    ids.add(id);
    return { id, ...d };
  });
}

/** A label as a readable URL name (`pc-512m`, `my-dump.txt`): what the page puts in `#m=`. */
export function urlName(label: string): string {
  const s = label
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-.]+|-+$/g, '');
  return s || 'dump';
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

/** Host names a loopback server answers to (a guard against DNS rebinding). */
function hostAllowed(req: IncomingMessage, bound: string): boolean {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (!['127.0.0.1', 'localhost', '::1'].includes(bound)) return true;
  return host === 'localhost' || host === '127.0.0.1' || host === '::1' || host === bound;
}

/**
 * What to call a running QEMU: its machine type (the QOM type of `/machine`, e.g.
 * `pc-i440fx-7.2-machine`, without `-machine`), or the socket when QEMU does not say.
 */
async function liveLabel(client: QmpClient, socket: string): Promise<string> {
  try {
    const type = await client.execute('qom-get', { path: '/machine', property: 'type' });
    if (typeof type === 'string' && type) return `${type.replace(/-machine$/, '')} (live QEMU)`;
  } catch {
    // An old or restricted QEMU: fall back to where it listens.
  }
  return `QEMU at ${socket}`;
}

async function fetchQmp(socket: string): Promise<{ label: string; mtree: string; flat: string }> {
  const client = await QmpClient.connect(socket, { timeoutMs: 15000 });
  try {
    const label = await liveLabel(client, socket);
    const mtree = await client.hmp('info mtree -D');
    const flat = await client.hmp('info mtree -f');
    return { label, mtree, flat };
  } finally {
    await client.close();
  }
}

async function fetchQmpLabel(socket: string): Promise<string> {
  try {
    const client = await QmpClient.connect(socket, { timeoutMs: 5000 });
    try {
      return await liveLabel(client, socket);
    } finally {
      await client.close();
    }
  } catch {
    return `running QEMU (${socket})`;
  }
}

/** The request header (value `1`) that `GET /api/live` requires; see the handler. */
export const LIVE_HEADER = 'x-memtree-live';

/** Starts the viewer server; resolves once it listens. */
export async function startViewerServer(options: ViewerServerOptions): Promise<ViewerServer> {
  const root = options.root ?? findViewerRoot();
  if (!root) {
    throw new MemtreeError('ERR_IO', "the viewer page is not built: run 'npm run build:viewer' first");
  }
  const dumps = options.dumps;
  const qmp = options.qmp ?? null;
  const live = options.live ?? null;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!hostAllowed(req, options.host)) return send(res, 403, 'text/plain', 'forbidden host\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'GET only\n');
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      // A malformed percent escape (`/%ZZ`) or URL is the client's mistake.
      return send(res, 400, 'text/plain', 'bad request: malformed URL\n');
    }
    if (path === '/api/dumps') {
      return sendJson(res, 200, {
        dumps: dumps.map((d) => ({ id: d.id, label: d.label })),
        qmp: qmp ? { label: await fetchQmpLabel(qmp) } : null,
        // Only a `memtree run --serve` server has one; the others answer as they always did.
        ...(live ? { live: { label: live.label } } : {}),
      });
    }
    if (path === '/api/live') {
      if (!live) return sendJson(res, 404, { error: 'no machine runs in this server' });
      // A reading clears the dirty pages it reports, so another site's page must not be able to
      // trigger one: a cross-origin request with a custom header needs a CORS preflight, which
      // this server refuses (GET only); the viewer, on the same origin, sends it freely.
      if (req.headers[LIVE_HEADER] !== '1') {
        return sendJson(res, 403, {
          error: `/api/live clears the dirty pages it reports: send the header ${LIVE_HEADER}: 1`,
        });
      }
      return sendJson(res, 200, live.read());
    }
    if (path.startsWith('/api/dumps/')) {
      const d = dumps.find((x) => x.id === path.slice('/api/dumps/'.length));
      if (!d) return sendJson(res, 404, { error: `no dump ${path}` });
      return sendJson(res, 200, { label: d.label, mtree: d.mtree, flat: d.flat });
    }
    if (path === '/api/qmp') {
      if (!qmp) return sendJson(res, 404, { error: 'the server was started without --qmp' });
      try {
        return sendJson(res, 200, await fetchQmp(qmp));
      } catch (e) {
        return sendJson(res, 502, { error: (e as Error).message });
      }
    }
    const rel = normalize(path === '/' ? 'index.html' : path.slice(1));
    const file = join(root, rel);
    if (rel.startsWith('..') || !file.startsWith(root + sep))
      return send(res, 403, 'text/plain', 'forbidden\n');
    try {
      const body = await readFile(file);
      return send(res, 200, TYPES[extname(file)] ?? 'application/octet-stream', body);
    } catch {
      return send(res, 404, 'text/plain', 'not found\n');
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: (e as Error).message });
      else res.end();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      fail(new MemtreeError('ERR_IO', `cannot listen on ${options.host}:${options.port}: ${e.message}`)),
    );
    server.listen(options.port, options.host, () => ok());
  });
  const addr = server.address() as AddressInfo;
  const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${hostPart}:${addr.port}/`,
    server,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

const help = `Usage: memtree serve [DUMP...] [--port N] [--host ADDR] [--qmp SOCKET]

Starts the memtree web viewer on this machine and prints its URL. Open it in a
browser to see each address space of a machine: the region tree beside the
flat map (holes, overlaps and aliases visible), an address box that answers
'what is at this address?', and a diff of two dumps.

DUMP is a file with the output of 'info mtree -D' (optionally followed by
'info mtree -f'), a file with 'info mtree -f' output that belongs to the dump
before it, or a directory with mtree-D.txt and flat.txt. Without DUMP the page
shows its built-in examples; dumps can also be pasted or dropped into the page.

Options:
  --port N       TCP port (default 8080; 0 picks a free port)
  --host ADDR    address to bind (default 127.0.0.1: only this machine)
  --qmp SOCKET   also show a running QEMU (QMP socket: a path, unix:PATH or
                 tcp:HOST:PORT); the page's Refresh button reads it again

Example:
  memtree serve ../shared/fixtures/qemu-7.2/pc-512m --port 0
`;

/** The `serve` command. */
export const serveCommand: Command = {
  name: 'serve',
  summary: 'start the web viewer (region tree, flat map, lookup, diff) on a local port',
  help,
  async run(args: string[], io: CliIo): Promise<number> {
    let parsed: ReturnType<typeof parseOptions>;
    try {
      parsed = parseOptions(args);
    } catch (e) {
      throw e instanceof UsageError ? e : new UsageError((e as Error).message);
    }
    const { values, positionals } = parsed;
    const port = Number(values.port ?? '8080');
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new UsageError(`--port ${values.port}: expected a port number 0..65535`);
    }
    const dumps = await readDumps(positionals, io);
    const srv = await startViewerServer({
      dumps,
      port,
      host: values.host ?? '127.0.0.1',
      qmp: values.qmp ?? null,
    });
    io.stdout.write(`memtree viewer: ${srv.url}\n`);
    const what = [
      dumps.length ? `${dumps.length} dump${dumps.length === 1 ? '' : 's'}` : 'the built-in examples',
      values.qmp ? `QEMU at ${values.qmp}` : '',
    ].filter(Boolean);
    io.stdout.write(`Showing ${what.join(' and ')}. Press Ctrl+C to stop.\n`);
    // The open server keeps the process alive; Ctrl+C ends it.
    return 0;
  },
};

function parseOptions(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      qmp: { type: 'string' },
    },
  });
}
