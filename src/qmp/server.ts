/**
 * @module qmp/server
 * A QMP server for a memtree machine, speaking QEMU 7.2's protocol as its monitor does
 * (monitor/qmp.c, qapi/qmp-dispatch.c): the greeting, capability negotiation, replies that echo
 * `id`, errors with `class` and `desc`, and events with a timestamp. It knows the machine only
 * through {@link QmpMachine}, so any machine built on the core can be driven like a QEMU: run state
 * (stop, cont, system_reset, quit), `human-monitor-command` for `info mtree`, `info ramblock` and
 * `info status`, and live migration (`migrate`, `query-migrate`, postcopy, cancel) with the
 * existing precopy/postcopy code. Node only.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { MemorySystem } from '../core/system.js';
import { MigrationError } from '../migration/errors.js';
import type { Connection } from '../migration/incoming.js';
import { migrateIncoming, type PostcopyPages } from '../migration/incoming.js';
import {
  decodeMachineState,
  encodeMachineState,
  MACHINE_STATE_VERSION,
  type MachineState,
} from '../migration/machine-state.js';
import { socketConnection, streamSink } from '../migration/node-io.js';
import { type MigrationProgress, type MigrationStats, migrateOutgoing } from '../migration/precopy.js';
import { TARGET_PAGE_SIZE } from '../migration/qemu-stream.js';
import { migratableBlocks } from '../migration/ram-load.js';
import { formatFlat, formatMtree } from '../mtree/print.js';
import { formatRamblock } from '../mtree/ramblock.js';
import { QmpError } from './errors.js';

/** The machine a {@link QmpServer} drives. */
export interface QmpMachine {
  /** The machine's memory. */
  readonly ms: MemorySystem;
  /** Its type as `-M` names it (sent in the migration stream's configuration record). */
  readonly machineType: string;
  /** Lets the vCPUs run (QEMU `vm_start` minus the run-state bookkeeping the server does). */
  start(): void;
  /** Stops the vCPUs; no guest instruction runs after it returns. */
  stop(): void;
  /** Resets the machine as a host-requested system reset does. */
  reset(): void;
  /** Ends the process (after the server answered `quit`). */
  quit(): void;
  /** Non-RAM state (harts, devices) for migration, taken while stopped. */
  saveState?(): MachineState['devices'];
  /** Loads what {@link saveState} produced on the source; throw to refuse it. */
  loadState?(devices: MachineState['devices']): void;
  /**
   * Postcopy destination: the machine may run before every page arrived, its vCPUs waiting (through
   * `pages.ensure`) for the pages they touch. Without it the destination starts once all arrived.
   */
  postcopyStart?(pages: PostcopyPages): void;
  /** Every page of a postcopy migration arrived (after {@link postcopyStart}). */
  postcopyEnd?(): void;
}

/** QEMU's RunState names that a memtree machine passes through. */
export type RunState =
  | 'prelaunch'
  | 'running'
  | 'paused'
  | 'inmigrate'
  | 'finish-migrate'
  | 'postmigrate'
  | 'shutdown';

/** QEMU's MigrationStatus names. */
export type MigrationStatus =
  | 'none'
  | 'setup'
  | 'cancelling'
  | 'cancelled'
  | 'active'
  | 'postcopy-active'
  | 'postcopy-paused'
  | 'postcopy-recover'
  | 'completed'
  | 'failed';

/** Options of {@link QmpServer}. */
export interface QmpServerOptions {
  /** Run state at start: `prelaunch` (as `-S`), `running` (default) or `inmigrate`. */
  readonly initialState?: RunState;
  /** The QEMU version announced in the greeting and by `query-version` (default 7.2.0). */
  readonly version?: { major: number; minor: number; micro: number };
  /** Longest guest pause the migration aims at, ms (QEMU `downtime-limit`, default 300). */
  readonly downtimeLimitMs?: number;
  /** Called with every event sent (also when no client is connected). */
  readonly onEvent?: (event: string, data?: unknown) => void;
}

/** A QMP error reply: QEMU's error class and text. */
class CommandError extends Error {
  constructor(
    readonly qmpClass: string,
    desc: string,
  ) {
    super(desc);
  }
}

const generic = (desc: string) => new CommandError('GenericError', desc);

/** QEMU's JSON output style (qobject_to_json): `", "` and `": "` separators, key order kept. */
export function qemuJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(qemuJson).join(', ')}]`;
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v))
    if (x !== undefined) parts.push(`${JSON.stringify(k)}: ${qemuJson(x)}`);
  return `{${parts.join(', ')}}`;
}

/**
 * Splits QMP input into top-level JSON values (QEMU's json-streamer does the same by counting
 * brackets); a bare word at top level is returned as is so that the parser can name it.
 */
class InputSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private i = 0;

  push(chunk: string): string[] {
    this.buf += chunk;
    const out: string[] = [];
    for (; this.i < this.buf.length; this.i++) {
      const c = this.buf[this.i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') {
          this.inString = false;
          if (this.depth === 0) this.emit(out);
        }
        continue;
      }
      if (this.depth === 0 && this.start >= 0 && /[\s{["]/.test(c)) this.emit(out, this.i);
      if (this.depth === 0 && this.start < 0 && /\s/.test(c)) continue;
      if (this.start < 0) this.start = this.i;
      if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth <= 0) {
          this.depth = 0;
          this.emit(out);
        }
      }
    }
    if (this.start < 0) {
      this.buf = '';
      this.i = 0;
    } else if (this.start > 0) {
      this.buf = this.buf.slice(this.start);
      this.i -= this.start;
      this.start = 0;
    }
    return out;
  }

  private emit(out: string[], end = this.i + 1): void {
    out.push(this.buf.slice(this.start, end));
    this.start = -1;
  }
}

interface CommandSpec {
  /** Parameter name → JSON type ('string', 'boolean', 'array', 'object', 'any'); `?` suffix: optional. */
  readonly args: Readonly<Record<string, string>>;
  readonly run: (args: Record<string, unknown>) => unknown | Promise<unknown>;
}

/** Where a QMP server or a migration listens or connects. */
export type SocketSpec = { readonly path: string } | { readonly host: string; readonly port: number };

/**
 * Reads QEMU's `-qmp` / `-incoming` socket syntax: `unix:PATH` or `tcp:HOST:PORT`, each with
 * optional `,key=value` options (`server=on,wait=off` are accepted; QEMU's `,,` escapes a comma).
 * An empty host means loopback (QEMU would listen on every interface; memtree stays local).
 */
export function parseSocketSpec(spec: string): SocketSpec {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < spec.length; i++) {
    if (spec[i] === ',' && spec[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (spec[i] === ',') {
      parts.push(cur);
      cur = '';
    } else cur += spec[i];
  }
  parts.push(cur);
  const [addr, ...opts] = parts;
  for (const o of opts) {
    if (!/^(server|wait|nowait|server=(on|off)|wait=(on|off))$/.test(o)) {
      throw new QmpError('io', `unsupported socket option '${o}' in '${spec}'`);
    }
  }
  if (addr!.startsWith('unix:') && addr!.length > 5) return { path: addr!.slice(5) };
  const m = /^tcp:(\[[^\]]*\]|[^:]*):(\d+)$/.exec(addr!);
  if (m) {
    const port = Number(m[2]);
    if (port <= 65535) {
      const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
      return { host: host === '' ? '127.0.0.1' : host, port };
    }
  }
  throw new QmpError('io', `'${spec}' is not unix:PATH or tcp:HOST:PORT`);
}

function describe(s: SocketSpec): string {
  return 'path' in s ? `unix:${s.path}` : `tcp:${s.host}:${s.port}`;
}

interface MigrationCaps {
  'postcopy-ram': boolean;
  events: boolean;
}

/**
 * A QMP server for one machine. `listen` opens the socket; the server answers one client at a
 * time, as QEMU's monitor does (a second connection gets its greeting once the first closes).
 */
export class QmpServer {
  private state: RunState;
  private autostart = true;
  private readonly version: { major: number; minor: number; micro: number };
  private readonly servers: Server[] = [];
  private active: Socket | null = null;
  private readonly queue: Socket[] = [];
  private readonly commands: Map<string, CommandSpec>;
  private readonly caps: MigrationCaps = { 'postcopy-ram': false, events: false };
  // Migration, outgoing and incoming.
  private migStatus: MigrationStatus = 'none';
  private migError: string | undefined;
  private migProgress: MigrationProgress | null = null;
  private migStats: MigrationStats | null = null;
  private migStart = 0;
  private migSetupTime = 0;
  private migAbort: AbortController | null = null;
  private migConnection: { destroy(): void } | null = null;
  private postcopyStarted = false;
  private migTotal = 0;
  private migration: Promise<void> | null = null;
  private incomingServer: Server | null = null;
  /** The guest runs on a postcopy migration that is still receiving pages. */
  private incomingPostcopy = false;
  /** The connection an incoming migration reads (`migrate-pause` breaks it). */
  private incomingSocket: Socket | null = null;
  /** A paused outgoing postcopy waits here for the connection `migrate resume=true` makes. */
  private resumeWaiter: { resolve(c: Connection): void; reject(e: Error): void } | null = null;
  /** A paused incoming postcopy waits here for the connection `migrate-recover` accepts. */
  private recoverWaiter: ((c: Connection) => void) | null = null;
  private incomingDone: Promise<void> | null = null;
  private incomingResolve: (() => void) | null = null;
  private closed = false;
  private downtimeLimitMs: number;
  /** QEMU's max-postcopy-bandwidth (bytes/s of the background stream, 0: unlimited). */
  private postcopyBandwidth = 0;

  constructor(
    readonly machine: QmpMachine,
    private readonly options: QmpServerOptions = {},
  ) {
    this.state = options.initialState ?? 'running';
    this.version = options.version ?? { major: 7, minor: 2, micro: 0 };
    this.downtimeLimitMs = options.downtimeLimitMs ?? 300;
    this.commands = this.commandTable();
  }

  /** The current run state (QEMU `query-status`'s `status`). */
  get runState(): RunState {
    return this.state;
  }

  /** The status of the last (or current) migration. */
  get migrationStatus(): MigrationStatus {
    return this.migStatus;
  }

  /** Resolves once an incoming migration completed (the destination loaded everything). */
  whenIncomingDone(): Promise<void> {
    return this.incomingDone ?? Promise.resolve();
  }

  /** The last migration's failure text, if it failed. */
  get migrationError(): string | undefined {
    return this.migError;
  }

  /**
   * Listens on `spec` (see {@link parseSocketSpec}); resolves to the bound address (a TCP port of
   * 0 picks a free one). Throws a {@link QmpError} `io` if the address cannot be bound.
   */
  async listen(spec: string | SocketSpec): Promise<SocketSpec> {
    const s = typeof spec === 'string' ? parseSocketSpec(spec) : spec;
    const server = createServer((sock) => this.accept(sock));
    if ('path' in s) {
      try {
        unlinkSync(s.path); // QEMU's unix socket server replaces a stale socket file too
      } catch {
        // none there
      }
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) =>
        reject(new QmpError('io', `cannot listen for QMP on ${describe(s)}: ${e.message}`)),
      );
      if ('path' in s) server.listen(s.path, () => resolve());
      else server.listen(s.port, s.host, () => resolve());
    });
    this.servers.push(server);
    const a = server.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : s;
  }

  /** Closes the listening sockets and every connection; a running migration is cancelled. */
  async close(): Promise<void> {
    this.closed = true;
    this.migAbort?.abort();
    this.migConnection?.destroy();
    for (const q of this.queue.splice(0)) q.destroy();
    this.active?.destroy();
    this.incomingServer?.close();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(() => r(undefined)))));
    await this.migration?.catch(() => {});
  }

  /** Sends an event to the connected client (QEMU `qapi_event_emit`). */
  emit(event: string, data?: unknown): void {
    this.options.onEvent?.(event, data);
    const t = Date.now();
    const msg: Record<string, unknown> = {
      timestamp: { seconds: Math.floor(t / 1000), microseconds: (t % 1000) * 1000 },
      event,
    };
    if (data !== undefined) msg.data = data;
    if (this.active && this.negotiated.has(this.active)) this.send(this.active, msg);
  }

  /**
   * Says that the guest itself powered off or asked for a reset, so the SHUTDOWN/RESET event
   * carries `guest: true` as QEMU's does.
   */
  guestShutdown(reason = 'guest-shutdown'): void {
    this.state = 'shutdown';
    this.emit('SHUTDOWN', { guest: true, reason });
  }

  // ---- connections --------------------------------------------------------------------------

  private readonly negotiated = new WeakSet<Socket>();

  private accept(sock: Socket): void {
    if (this.closed) {
      sock.destroy();
      return;
    }
    sock.on('error', () => {});
    if (this.active) {
      this.queue.push(sock);
      sock.once('close', () => {
        const i = this.queue.indexOf(sock);
        if (i >= 0) this.queue.splice(i, 1);
      });
      return;
    }
    this.serve(sock);
  }

  private serve(sock: Socket): void {
    this.active = sock;
    sock.setEncoding('utf8');
    const splitter = new InputSplitter();
    let chain = Promise.resolve();
    sock.on('data', (chunk: string) => {
      for (const text of splitter.push(chunk)) {
        chain = chain.then(() => this.handle(sock, text));
      }
    });
    sock.once('close', () => {
      if (this.active === sock) this.active = null;
      const next = this.queue.shift();
      if (next && !this.closed) this.serve(next);
    });
    this.send(sock, {
      QMP: {
        version: {
          qemu: { micro: this.version.micro, minor: this.version.minor, major: this.version.major },
          package: 'memtree',
        },
        capabilities: ['oob'],
      },
    });
  }

  private send(sock: Socket, msg: unknown): void {
    if (!sock.destroyed) sock.write(`${qemuJson(msg)}\r\n`);
  }

  private async handle(sock: Socket, text: string): Promise<void> {
    let req: unknown;
    try {
      req = JSON.parse(text);
    } catch {
      const word = /^[A-Za-z_][\w-]*$/.test(text) ? `invalid keyword '${text}'` : 'expecting value';
      this.send(sock, { error: { class: 'GenericError', desc: `JSON parse error, ${word}` } });
      return;
    }
    if (typeof req !== 'object' || req === null || Array.isArray(req)) {
      this.send(sock, { error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } });
      return;
    }
    const r = req as Record<string, unknown>;
    const hasId = 'id' in r;
    const reply = (body: Record<string, unknown>) => {
      if ('return' in body) this.send(sock, hasId ? { return: body.return, id: r.id } : body);
      else this.send(sock, hasId ? { id: r.id, ...body } : body);
    };
    const fail = (e: CommandError) => reply({ error: { class: e.qmpClass, desc: e.message } });
    // QEMU qmp_dispatch: the checks in this order.
    const oob = 'exec-oob' in r;
    const name = oob ? r['exec-oob'] : r.execute;
    if (!('execute' in r) && !oob) return fail(generic("QMP input lacks member 'execute'"));
    if (typeof name !== 'string') {
      return fail(generic(`QMP input member '${oob ? 'exec-oob' : 'execute'}' must be a string`));
    }
    for (const k of Object.keys(r)) {
      if (!['execute', 'exec-oob', 'arguments', 'id', 'control'].includes(k)) {
        return fail(generic(`QMP input member '${k}' is unexpected`));
      }
    }
    const args = r.arguments ?? {};
    if (typeof args !== 'object' || args === null || Array.isArray(args)) {
      return fail(generic("QMP input member 'arguments' must be an object"));
    }
    if (oob) return fail(generic(`The command ${name} does not support OOB`));
    if (!this.negotiated.has(sock)) {
      if (name !== 'qmp_capabilities') {
        return fail(
          new CommandError('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'"),
        );
      }
      const enable = (args as Record<string, unknown>).enable;
      if (enable !== undefined && !(Array.isArray(enable) && enable.every((c) => c === 'oob'))) {
        return fail(generic("Parameter 'enable' does not accept value"));
      }
      this.negotiated.add(sock);
      return reply({ return: {} });
    }
    if (name === 'qmp_capabilities') {
      return fail(
        new CommandError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored'),
      );
    }
    const spec = this.commands.get(name);
    if (!spec) return fail(new CommandError('CommandNotFound', `The command ${name} has not been found`));
    try {
      checkArgs(spec, args as Record<string, unknown>);
      const ret = await spec.run(args as Record<string, unknown>);
      reply({ return: ret ?? {} });
      if (name === 'quit') {
        sock.end();
        this.machine.quit();
      }
    } catch (e) {
      if (e instanceof CommandError) fail(e);
      else fail(generic((e as Error).message));
    }
  }

  // ---- run state ----------------------------------------------------------------------------

  /** QEMU `vm_stop`: stops the vCPUs and sends STOP (if they ran). */
  private vmStop(next: RunState, tellMemory = true): void {
    if (this.state === 'running') {
      this.machine.stop();
      if (tellMemory) this.machine.ms.setRunning(false);
      this.state = next;
      this.emit('STOP');
    } else this.state = next;
  }

  /** QEMU `vm_start`: runs the vCPUs and sends RESUME. */
  private vmStart(tellMemory = true): void {
    if (this.state === 'running') return;
    this.state = 'running';
    if (tellMemory) this.machine.ms.setRunning(true);
    this.emit('RESUME');
    this.machine.start();
  }

  private commandTable(): Map<string, CommandSpec> {
    const c = new Map<string, CommandSpec>();
    c.set('query-status', {
      args: {},
      run: () => ({ status: this.state, singlestep: false, running: this.state === 'running' }),
    });
    c.set('stop', {
      args: {},
      run: () => {
        // QEMU qmp_stop: during an incoming migration only autostart is cleared.
        if (this.state === 'inmigrate') this.autostart = false;
        else this.vmStop('paused');
      },
    });
    c.set('cont', {
      args: {},
      run: () => {
        if (this.state === 'inmigrate') {
          this.autostart = true;
          return;
        }
        if (this.state === 'postmigrate' || this.state === 'shutdown' || this.state === 'finish-migrate') {
          // QEMU qmp_cont: these states must be left by a reset (or the migration's end) first.
          if (this.state === 'finish-migrate') throw generic('Migration is not finished');
          throw generic('Resetting the Virtual Machine is required');
        }
        this.vmStart();
      },
    });
    c.set('system_reset', {
      args: {},
      run: () => {
        this.emit('RESET', { guest: false, reason: 'host-qmp-system-reset' });
        this.machine.reset();
        // QEMU main_loop_should_exit: a reset of a machine that is not running makes it prelaunch.
        if (this.state !== 'running' && this.state !== 'inmigrate' && this.state !== 'finish-migrate') {
          this.state = 'prelaunch';
        }
      },
    });
    c.set('quit', {
      args: {},
      run: () => {
        this.emit('SHUTDOWN', { guest: false, reason: 'host-qmp-quit' });
      },
    });
    c.set('query-version', {
      args: {},
      run: () => ({
        qemu: { micro: this.version.micro, minor: this.version.minor, major: this.version.major },
        package: 'memtree',
      }),
    });
    c.set('query-commands', {
      args: {},
      run: () => [...c.keys(), 'qmp_capabilities'].map((name) => ({ name })),
    });
    c.set('human-monitor-command', {
      args: { 'command-line': 'string', 'cpu-index?': 'number' },
      run: (a) => this.hmp(a['command-line'] as string).replace(/\r?\n/g, '\r\n'),
    });
    c.set('migrate', {
      args: {
        uri: 'string',
        'blk?': 'boolean',
        'inc?': 'boolean',
        'detach?': 'boolean',
        'resume?': 'boolean',
      },
      run: (a) => (a.resume === true ? this.resumeMigration(a.uri as string) : this.migrate(a.uri as string)),
    });
    c.set('migrate-recover', { args: { uri: 'string' }, run: (a) => this.recoverIncoming(a.uri as string) });
    c.set('migrate-pause', {
      args: {},
      run: () => {
        // QEMU qmp_migrate_pause: shuts the stream down, and both sides pause
        if (this.migStatus === 'postcopy-active' && this.migration) this.migConnection?.destroy();
        else if (this.migStatus === 'postcopy-active' && this.incomingSocket) this.incomingSocket.destroy();
        else throw generic('migrate-pause is currently only supported during postcopy-active state');
      },
    });
    c.set('query-migrate', { args: {}, run: () => this.queryMigrate() });
    c.set('migrate-set-parameters', {
      args: { 'downtime-limit?': 'number', 'max-postcopy-bandwidth?': 'number' },
      run: (a) => {
        const v = a['downtime-limit'];
        const bw = a['max-postcopy-bandwidth'];
        // QEMU migrate_params_check: at most 2000 seconds
        if (v !== undefined && (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 2_000_000)) {
          throw generic(
            "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 milliseconds",
          );
        }
        // bytes per second, 0 for no limit; QEMU's qobject_input_type_uint64 takes any integer (a
        // negative one wraps around to a huge limit) and refuses anything else with this text
        if (bw !== undefined && !Number.isInteger(bw)) {
          throw generic("Parameter 'max-postcopy-bandwidth' expects uint64");
        }
        if (v !== undefined) this.downtimeLimitMs = v as number;
        if (bw !== undefined)
          this.postcopyBandwidth = (bw as number) < 0 ? 2 ** 64 + (bw as number) : (bw as number);
      },
    });
    c.set('query-migrate-parameters', {
      args: {},
      run: () => ({
        'downtime-limit': this.downtimeLimitMs,
        'max-postcopy-bandwidth': this.postcopyBandwidth,
      }),
    });
    c.set('migrate-set-capabilities', {
      args: { capabilities: 'array' },
      run: (a) => this.setCapabilities(a.capabilities as unknown[]),
    });
    c.set('query-migrate-capabilities', {
      args: {},
      run: () => Object.entries(this.caps).map(([capability, state]) => ({ capability, state })),
    });
    c.set('migrate-start-postcopy', {
      args: {},
      run: () => {
        if (!this.caps['postcopy-ram']) {
          throw generic('Enable postcopy with migrate_set_capability before the start of migration');
        }
        if (this.migStatus !== 'active' && this.migStatus !== 'setup') {
          throw generic('Postcopy must be started after migration has been started');
        }
        this.postcopyStarted = true;
      },
    });
    c.set('migrate_cancel', {
      args: {},
      run: () => {
        if (this.migStatus === 'setup' || this.migStatus === 'active' || this.resumeWaiter) {
          this.setMigStatus('cancelling');
          this.migAbort?.abort();
          this.migConnection?.destroy();
        }
      },
    });
    c.set('migrate-incoming', {
      args: { uri: 'string' },
      run: (a) => {
        if (this.state !== 'inmigrate' || this.incomingServer) {
          throw generic("'-incoming' was not specified on the command line");
        }
        return this.incoming(a.uri as string);
      },
    });
    return c;
  }

  // ---- HMP ----------------------------------------------------------------------------------

  /** The text QEMU 7.2's monitor prints for `line` (with `\n`; the caller adds the `\r`). */
  hmp(line: string): string {
    const words = line
      .trim()
      .split(/\s+/)
      .filter((w) => w !== '');
    const [cmd, sub, ...rest] = words;
    if (cmd === 'info' && sub === 'status') {
      // QEMU hmp_info_status
      const running = this.state === 'running';
      const extra = !running && this.state !== 'paused' ? ` (${this.state})` : '';
      return `VM status: ${running ? 'running' : 'paused'}${extra}\n`;
    }
    if (cmd === 'info' && sub === 'ramblock') return formatRamblock(this.machine.ms);
    if (cmd === 'info' && sub === 'mtree') {
      // args_type "flatview:-f,dispatch_tree:-d,owner:-o,disabled:-D"
      const flags = new Set<string>();
      for (const w of rest) {
        if (!/^-[fdoD]$/.test(w)) return `info: unsupported option ${w}\n`;
        flags.add(w[1]!);
      }
      if (flags.has('o')) return 'memtree does not print region owners (info mtree -o)\n';
      if (flags.has('f')) return formatFlat(this.machine.ms, { dispatch: flags.has('d') });
      return formatMtree(this.machine.ms, { disabled: flags.has('D') });
    }
    return `unknown command: '${words.join(' ')}'\n`;
  }

  // ---- migration ----------------------------------------------------------------------------

  /** QEMU migration_is_running: a migration owns the machine until it ended. */
  private migrationRunning(): boolean {
    const st = this.migStatus;
    return (
      st === 'setup' ||
      st === 'active' ||
      st === 'postcopy-active' ||
      st === 'postcopy-paused' ||
      st === 'postcopy-recover' ||
      st === 'cancelling'
    );
  }

  private setMigStatus(s: MigrationStatus): void {
    this.migStatus = s;
    if (this.caps.events) this.emit('MIGRATION', { status: s });
  }

  private setCapabilities(list: unknown[]): void {
    const next = { ...this.caps };
    for (const item of list) {
      const o = item as Record<string, unknown> | null;
      if (!o || typeof o.capability !== 'string' || typeof o.state !== 'boolean') {
        throw generic("Parameter 'capabilities' expects MigrationCapabilityStatus");
      }
      if (!(o.capability in next)) {
        throw generic(`Parameter 'capability' does not accept value '${o.capability}'`);
      }
      next[o.capability as keyof MigrationCaps] = o.state;
    }
    if (this.migrationRunning()) {
      throw generic('There is a migration process in progress');
    }
    Object.assign(this.caps, next);
  }

  private queryMigrate(): Record<string, unknown> {
    const st = this.migStatus;
    if (st === 'none') return {};
    const out: Record<string, unknown> = { status: st };
    const p = this.migProgress;
    if (p && st !== 'setup') {
      const done = this.migStats;
      const elapsed = (done ? done.totalTimeMs : performance.now() - this.migStart) | 0;
      out['setup-time'] = this.migSetupTime | 0;
      if (done) out.downtime = Math.round(done.downtimeMs);
      else out['expected-downtime'] = this.downtimeLimitMs;
      out['total-time'] = elapsed;
      const mbps = elapsed > 0 ? (p.bytesSent * 8) / 1000 / elapsed : 0;
      // QEMU populate_ram_info
      out.ram = {
        transferred: p.bytesSent,
        remaining: st === 'completed' ? 0 : p.remaining,
        total: this.migTotal,
        duplicate: p.zeroPages,
        skipped: 0,
        normal: p.pagesSent,
        'normal-bytes': p.pagesSent * TARGET_PAGE_SIZE,
        'dirty-sync-count': p.dirtySyncCount,
        'page-size': TARGET_PAGE_SIZE,
        'multifd-bytes': 0,
        'pages-per-second': 0,
        'precopy-bytes': p.bytesSent - p.downtimeBytes - (p.postcopyBytes ?? 0),
        'downtime-bytes': p.downtimeBytes,
        'postcopy-bytes': p.postcopyBytes ?? 0,
        'dirty-sync-missed-zero-copy': 0,
        mbps,
        'dirty-pages-rate': 0,
        'postcopy-requests': p.postcopyRequests,
      };
    }
    if (st === 'failed' && this.migError) out['error-desc'] = this.migError;
    return out;
  }

  private migrate(uri: string): void {
    if (this.migrationRunning()) {
      throw generic('There is a migration process in progress');
    }
    if (this.state === 'postmigrate') {
      throw generic("Can't migrate the vm that was paused due to previous migration");
    }
    if (this.state === 'inmigrate') throw generic('Guest is waiting for an incoming migration');
    if (this.incomingPostcopy) throw generic('There is a migration process in progress');
    let target: SocketSpec | { cmd: string };
    if (uri.startsWith('exec:')) {
      if (this.caps['postcopy-ram']) {
        throw generic('Postcopy needs a return path; exec: migration has none');
      }
      target = { cmd: uri.slice(5) };
    } else target = migrationSocket(uri);
    this.migError = undefined;
    this.migStats = null;
    this.postcopyStarted = false;
    this.migStart = performance.now();
    this.migAbort = new AbortController();
    this.migProgress = {
      bytesSent: 0,
      remaining: 0,
      dirtySyncCount: 0,
      pagesSent: 0,
      zeroPages: 0,
      postcopyRequests: 0,
      downtimeBytes: 0,
      postcopyBytes: 0,
      phase: 'precopy',
    };
    this.migTotal = migratableBlocks(this.machine.ms).reduce((n, b) => n + b.usedLength, 0);
    this.setMigStatus('setup');
    this.migration = this.runMigration(target, this.migAbort.signal);
  }

  private async runMigration(target: SocketSpec | { cmd: string }, signal: AbortSignal): Promise<void> {
    let conn: Connection;
    let child: ChildProcess | null = null;
    try {
      if ('cmd' in target) {
        child = spawn('/bin/sh', ['-c', target.cmd], { stdio: ['pipe', 'ignore', 'inherit'] });
        const c = child;
        const exited = new Promise<void>((r) => c.once('close', () => r()));
        c.stdin!.on('error', () => {});
        conn = {
          input: (async function* () {})(),
          output: streamSink(c.stdin!),
          close: async () => {
            c.stdin!.end();
            await exited;
          },
        };
        this.migConnection = { destroy: () => c.kill('SIGKILL') };
      } else {
        conn = socketConnection(await this.connectMigration(target));
        if (signal.aborted) throw new MigrationError('cancelled', 'the migration was cancelled');
      }
      this.migSetupTime = performance.now() - this.migStart;
      this.setMigStatus('active');
      const wasRunning = this.state === 'running';
      const stats = await migrateOutgoing(this.machine.ms, conn, {
        machine: this.machine.machineType,
        downtimeLimitMs: this.downtimeLimitMs,
        // QEMU has no pass limit: a migration that does not converge goes on until it is
        // cancelled, switched to postcopy, or given a larger downtime-limit.
        maxIterations: Number.POSITIVE_INFINITY,
        returnPath: !child,
        postcopyRequested: this.caps['postcopy-ram'] ? () => this.postcopyStarted : undefined,
        postcopyBandwidth: this.postcopyBandwidth,
        progress: this.migProgress!,
        signal,
        // QEMU postcopy_pause: a broken postcopy stream pauses until `migrate resume=true`
        // gives a new connection (or migrate_cancel ends it); there is no limit on how often.
        reconnect:
          child === null
            ? () =>
                new Promise<Connection>((resolve, reject) => {
                  this.migConnection = null;
                  this.resumeWaiter = { resolve, reject };
                  this.setMigStatus('postcopy-paused');
                  const cancel = () => reject(new MigrationError('cancelled', 'the migration was cancelled'));
                  if (signal.aborted) cancel();
                  else signal.addEventListener('abort', cancel, { once: true });
                })
            : undefined,
        maxRecoveries: Number.POSITIVE_INFINITY,
        resumed: () => this.setMigStatus('postcopy-active'),
        machineState: () => ({
          version: MACHINE_STATE_VERSION,
          payload: encodeMachineState({
            machine: this.machine.machineType,
            devices: this.machine.saveState?.() ?? {},
          }),
        }),
        guest: {
          stop: () => {
            // QEMU migration_completion: RUN_STATE_FINISH_MIGRATE while the last pass runs.
            if (this.state === 'running') this.vmStop('finish-migrate', false);
            else this.state = 'finish-migrate';
            if (this.migProgress!.phase === 'postcopy' || this.postcopyStarted) {
              this.setMigStatus('postcopy-active');
            }
          },
          resume: () => {
            // a failed migration: the source goes on as it was
            if (wasRunning) this.vmStart(false);
            else this.state = 'paused';
          },
        },
      });
      this.migStats = stats;
      this.state = 'postmigrate';
      this.setMigStatus('completed');
    } catch (e) {
      const cancelled = signal.aborted;
      this.migError = e instanceof Error ? e.message : String(e);
      if (this.state === 'finish-migrate') this.state = 'paused';
      this.setMigStatus(cancelled ? 'cancelled' : 'failed');
    } finally {
      this.resumeWaiter = null;
      this.migConnection = null;
      if (child && child.exitCode === null) child.kill('SIGKILL');
    }
  }

  /** Connects to a migration destination; the socket is `migConnection` from the start. */
  private connectMigration(target: SocketSpec): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const s = 'path' in target ? createConnection(target.path) : createConnection(target.port, target.host);
      this.migConnection = s;
      s.once('connect', () => {
        s.off('error', reject);
        s.on('error', () => {});
        resolve(s);
      });
      s.once('error', reject);
    });
  }

  /**
   * `migrate uri=... resume=true` (QEMU migrate_prepare, migrate_fd_connect): a paused postcopy
   * migration goes on over a new connection to the destination, which must be waiting for it
   * (`migrate-recover`). A connection that cannot be made leaves the migration paused.
   */
  private resumeMigration(uri: string): void {
    const waiter = this.resumeWaiter;
    if (this.migStatus !== 'postcopy-paused' || !waiter) {
      throw generic('Cannot resume if there is no paused migration');
    }
    const target = migrationSocket(uri);
    this.connectMigration(target).then(
      (sock) => {
        if (this.resumeWaiter !== waiter) {
          sock.destroy();
          return;
        }
        this.resumeWaiter = null;
        this.setMigStatus('postcopy-recover');
        waiter.resolve(socketConnection(sock));
      },
      (e: Error) => {
        this.migConnection = null;
        this.migError = e.message;
      },
    );
  }

  /**
   * `migrate-recover uri` (QEMU qmp_migrate_recover) on a destination whose postcopy paused: listen
   * on `uri` for the source's `migrate resume=true`, and go on over the first connection.
   */
  private async recoverIncoming(uri: string): Promise<void> {
    const waiter = this.recoverWaiter;
    if (this.migStatus !== 'postcopy-paused' || !waiter) {
      throw generic('Migrate recover can only be run when postcopy is paused.');
    }
    const spec = migrationSocket(uri);
    const server = await this.listenMigration(spec, (sock) => {
      server.close();
      if (this.recoverWaiter !== waiter) {
        sock.destroy();
        return;
      }
      this.recoverWaiter = null;
      this.incomingSocket = sock;
      this.setMigStatus('postcopy-recover');
      waiter(socketConnection(sock));
    });
  }

  /** Listens for migration connections on `spec` (a stale unix socket file is replaced). */
  private async listenMigration(spec: SocketSpec, onConnection: (sock: Socket) => void): Promise<Server> {
    const server = createServer((sock) => {
      sock.on('error', () => {});
      onConnection(sock);
    });
    if ('path' in spec) {
      try {
        unlinkSync(spec.path);
      } catch {
        // none there
      }
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(generic(`Failed to bind socket: ${e.message}`)));
      if ('path' in spec) server.listen(spec.path, () => resolve());
      else server.listen(spec.port, spec.host, () => resolve());
    });
    return server;
  }

  /**
   * Waits for a migration on `uri` (QEMU `-incoming tcp:HOST:PORT` / `unix:PATH`): the run state
   * is `inmigrate` until it completed, then the machine runs (or pauses, after `stop` or `-S`). A
   * failed attempt leaves the machine waiting for the next one (QEMU's destination would exit).
   * Resolves to the bound address.
   */
  async incoming(uri: string, options: { autostart?: boolean } = {}): Promise<SocketSpec> {
    const spec = migrationSocket(uri);
    this.state = 'inmigrate';
    if (options.autostart !== undefined) this.autostart = options.autostart;
    this.incomingDone = new Promise((r) => {
      this.incomingResolve = r;
    });
    let busy = false;
    const server = await this.listenMigration(spec, (sock) => {
      if (busy || this.state !== 'inmigrate') {
        sock.destroy();
        return;
      }
      busy = true;
      this.setMigStatus('active');
      void this.receive(sock).finally(() => {
        busy = false;
      });
    });
    this.incomingServer = server;
    const a = server.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : spec;
  }

  private async receive(sock: Socket): Promise<void> {
    const ms = this.machine.ms;
    try {
      this.incomingSocket = sock;
      await migrateIncoming(ms, socketConnection(sock), {
        machineState: (v, payload) => {
          const s = decodeMachineState(v, payload);
          if (s.machine !== this.machine.machineType) {
            throw new MigrationError(
              'remote',
              `the source is a ${s.machine} machine, this one is ${this.machine.machineType}`,
            );
          }
          // Loaded before the destination confirms, so that a state the machine refuses fails the
          // migration while the source can still run on.
          this.machine.loadState?.(s.devices);
        },
        // QEMU postcopy_pause_incoming: the guest goes on running, and its accesses to pages
        // that have not arrived wait, until `migrate-recover` brings the source back.
        recover: () =>
          new Promise<Connection>((resolve) => {
            this.incomingSocket = null;
            this.recoverWaiter = resolve;
            this.setMigStatus('postcopy-paused');
          }),
        recovered: () => this.setMigStatus('postcopy-active'),
        start: async (pages) => {
          if (pages) {
            this.setMigStatus('postcopy-active');
            // QEMU loadvm_postcopy_handle_run: the guest runs now, faulting pages in. A machine
            // that cannot wait for a page starts once all arrived (below).
            if (this.machine.postcopyStart && this.state === 'inmigrate') {
              this.machine.postcopyStart(pages);
              this.incomingPostcopy = true;
              this.state = 'paused';
              if (this.autostart) this.vmStart();
            }
            return;
          }
          this.finishIncoming();
        },
      });
      if (this.incomingPostcopy) {
        this.incomingPostcopy = false;
        this.machine.postcopyEnd?.();
        this.setMigStatus('completed');
        this.incomingResolve?.();
      }
      if (this.state === 'inmigrate') this.finishIncoming();
      this.incomingServer?.close();
      this.incomingServer = null;
    } catch (e) {
      this.setMigStatus('failed');
      this.migError = (e as Error).message;
      process.emitWarning?.(`memtree: incoming migration failed: ${this.migError}`);
    } finally {
      this.incomingSocket = null;
      this.recoverWaiter = null;
    }
  }

  private finishIncoming(): void {
    if (this.state !== 'inmigrate') return;
    this.setMigStatus('completed');
    this.state = 'paused';
    // QEMU process_incoming_migration_bh: the guest starts if autostart (no -S, no stop).
    if (this.autostart) this.vmStart();
    this.incomingResolve?.();
  }
}

/** A migration URI other than `exec:`, as `tcp:HOST:PORT` or `unix:PATH`, or QEMU's error. */
function migrationSocket(uri: string): SocketSpec {
  try {
    return parseSocketSpec(uri);
  } catch {
    throw generic("Parameter 'uri' expects a valid migration protocol");
  }
}

function typeOf(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v;
}

/** QEMU's visitor errors for arguments (qobject-input-visitor.c). */
function checkArgs(spec: CommandSpec, args: Record<string, unknown>): void {
  for (const k of Object.keys(args)) {
    if (!(k in spec.args) && !(`${k}?` in spec.args)) throw generic(`Parameter '${k}' is unexpected`);
  }
  for (const [key, type] of Object.entries(spec.args)) {
    const optional = key.endsWith('?');
    const name = optional ? key.slice(0, -1) : key;
    if (!(name in args)) {
      if (!optional) throw generic(`Parameter '${name}' is missing`);
      continue;
    }
    const t = typeOf(args[name]);
    if (type !== 'any' && t !== type) {
      const want = type === 'number' ? 'integer' : type;
      throw generic(`Invalid parameter type for '${name}', expected: ${want}`);
    }
  }
}
