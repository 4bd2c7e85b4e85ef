/**
 * @module qmp/client
 * A small client for QEMU's machine protocol (QMP) over a Unix socket or TCP, enough to ask a running
 * QEMU for its memory map: it reads the greeting, leaves capability-negotiation mode, sends commands
 * with ids and a per-command deadline, skips asynchronous events, and wraps `human-monitor-command`
 * so that `info mtree` text comes back exactly as the shared fixtures store it. Node only.
 */

import { createConnection, type Socket } from 'node:net';
import { QmpError } from './errors.js';

/** Where a QMP server listens: a Unix socket path, or a TCP host and port. */
export type QmpTarget = { readonly path: string } | { readonly host: string; readonly port: number };

/** QEMU's greeting, the first thing it sends on a new QMP connection. */
export interface QmpGreeting {
  readonly version: {
    readonly qemu: { readonly major: number; readonly minor: number; readonly micro: number };
    readonly package: string;
  };
  readonly capabilities: readonly string[];
}

/** An asynchronous event QEMU sent between replies (e.g. `STOP`, `SHUTDOWN`). */
export interface QmpEvent {
  readonly event: string;
  readonly data?: unknown;
  readonly timestamp?: { readonly seconds: number; readonly microseconds: number };
}

/** How to connect. */
export interface QmpClientOptions {
  /**
   * Milliseconds to wait for the connection, for the greeting, and (unless a command says
   * otherwise) for each command's reply. Default 30 000.
   */
  readonly timeoutMs?: number;
  /** Called for every asynchronous event; events are otherwise dropped. */
  readonly onEvent?: (event: QmpEvent) => void;
  /**
   * Longest message (in UTF-16 code units of its JSON text) accepted from the peer; a longer one
   * fails the connection with a `protocol` {@link QmpError} instead of growing memory without
   * bound. Default 64 Mi, far above the `info mtree` text of any real machine.
   */
  readonly maxMessageLength?: number;
}

/** Per-command options. */
export interface QmpExecuteOptions {
  /** Milliseconds to wait for this command's reply; default: the client's `timeoutMs`. */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024;

/**
 * Reads a QMP address as the CLI takes it: `tcp:HOST:PORT`, `HOST:PORT` (no slash, numeric port),
 * `unix:PATH`, or else a Unix socket path.
 */
export function parseQmpTarget(spec: string): QmpTarget {
  if (spec.startsWith('unix:')) return { path: spec.slice(5) };
  const isTcp = spec.startsWith('tcp:');
  const rest = isTcp ? spec.slice(4) : spec;
  const m = /^(.+):(\d+)$/.exec(rest);
  if (m && (isTcp || !rest.includes('/'))) {
    const port = Number(m[2]);
    if (port > 0 && port < 65536) return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  }
  return { path: spec };
}

function describeTarget(t: QmpTarget): string {
  return 'path' in t ? t.path : `${t.host}:${t.port}`;
}

/**
 * Cuts a stream of concatenated JSON objects into one string per object. QEMU ends each message with
 * `\r\n`, but with `pretty=on` a message spans many lines, so this counts braces instead of lines.
 */
export class JsonObjectSplitter {
  /** @param maxLength longest object accepted; a longer one makes {@link push} throw. */
  constructor(private readonly maxLength = DEFAULT_MAX_MESSAGE) {}

  /** Pieces of the unfinished object, one per chunk: joined once, when the object completes. */
  private parts: string[] = [];
  private partsLength = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  /**
   * Adds text; returns the objects completed by it. Throws on text outside an object, and on an
   * object longer than the cap. Each character is looked at once, in the chunk it came in, so a
   * message of n characters costs O(n) however it is cut.
   */
  push(chunk: string): string[] {
    const out: string[] = [];
    let start = this.depth > 0 ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (this.depth === 0) {
        if (c === ' ' || c === '\t' || c === '\r' || c === '\n') continue;
        if (c !== '{') {
          throw new QmpError('protocol', `QMP stream has ${JSON.stringify(c)} outside a JSON object`);
        }
        start = i;
      }
      if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth === 0) {
          const last = chunk.slice(start, i + 1);
          out.push(this.parts.length ? this.parts.join('') + last : last);
          this.parts = [];
          this.partsLength = 0;
          start = -1;
        }
      }
    }
    if (this.depth > 0) {
      const rest = chunk.slice(start);
      this.parts.push(rest);
      this.partsLength += rest.length;
      if (this.partsLength > this.maxLength) {
        throw new QmpError('protocol', `QMP message longer than ${this.maxLength} characters`);
      }
    }
    return out;
  }
}

interface Pending {
  readonly command: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: QmpError) => void;
  readonly timer: NodeJS.Timeout;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * An open QMP connection in command mode. Create it with {@link QmpClient.connect}; always
 * {@link QmpClient.close} it. Commands may overlap: replies are matched to commands by id, and a reply
 * that arrives after its command timed out is dropped.
 */
export class QmpClient {
  /** What QEMU said when the connection opened. */
  readonly greeting: QmpGreeting;
  private readonly socket: Socket;
  private readonly target: QmpTarget;
  private readonly timeoutMs: number;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedBy: QmpError | undefined;
  private readonly closedPromise: Promise<void>;

  private constructor(
    socket: Socket,
    target: QmpTarget,
    greeting: QmpGreeting,
    timeoutMs: number,
    splitter: JsonObjectSplitter,
    onEvent: ((e: QmpEvent) => void) | undefined,
  ) {
    this.socket = socket;
    this.target = target;
    this.greeting = greeting;
    this.timeoutMs = timeoutMs;
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: string) => {
      let texts: string[];
      try {
        texts = splitter.push(chunk);
      } catch (e) {
        this.fail(e as QmpError);
        socket.destroy();
        return;
      }
      for (const text of texts) this.dispatch(text, onEvent);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.fail(new QmpError('io', `QMP connection to ${describeTarget(target)} failed: ${e.message}`));
    });
    socket.on('close', () => {
      this.fail(new QmpError('closed', `QEMU closed the QMP connection ${describeTarget(target)}`));
    });
  }

  /**
   * Connects to the QMP server at `target` (see {@link parseQmpTarget} for the string form), waits
   * for QEMU's greeting and sends `qmp_capabilities`, so the returned client accepts commands.
   */
  static async connect(target: string | QmpTarget, options: QmpClientOptions = {}): Promise<QmpClient> {
    const t = typeof target === 'string' ? parseQmpTarget(target) : target;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const where = describeTarget(t);
    const socket = 'path' in t ? createConnection(t.path) : createConnection(t.port, t.host);
    socket.setEncoding('utf8');
    const splitter = new JsonObjectSplitter(options.maxMessageLength ?? DEFAULT_MAX_MESSAGE);
    let greeting: QmpGreeting;
    try {
      greeting = await new Promise<QmpGreeting>((resolve, reject) => {
        const timer = setTimeout(() => {
          finish(new QmpError('timeout', `no QMP greeting from ${where} within ${timeoutMs} ms`));
        }, timeoutMs);
        const finish = (err: QmpError | undefined, g?: QmpGreeting) => {
          clearTimeout(timer);
          socket.off('data', onData);
          socket.off('error', onError);
          socket.off('close', onClose);
          if (err) reject(err);
          else resolve(g!);
        };
        const onError = (e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') finish(new QmpError('not-found', `no QMP socket at ${where}`));
          else if (e.code === 'ECONNREFUSED') {
            finish(new QmpError('refused', `connection to QMP at ${where} refused (is QEMU running?)`));
          } else finish(new QmpError('io', `cannot connect to QMP at ${where}: ${e.message}`));
        };
        const onClose = () => finish(new QmpError('closed', `QEMU closed ${where} before its QMP greeting`));
        const onData = (chunk: string) => {
          let texts: string[];
          try {
            texts = splitter.push(chunk);
          } catch (e) {
            finish(e as QmpError);
            return;
          }
          const first = texts[0];
          if (first === undefined) return;
          let msg: unknown;
          try {
            msg = JSON.parse(first);
          } catch {
            finish(new QmpError('protocol', `${where} sent invalid JSON instead of a QMP greeting`));
            return;
          }
          if (!isObject(msg) || !isObject(msg.QMP)) {
            finish(new QmpError('protocol', `${where} did not greet with QMP: ${first.slice(0, 80)}`));
            return;
          }
          if (texts.length > 1) {
            // Nothing may arrive before we speak; anything that did is not QMP.
            finish(new QmpError('protocol', `${where} sent data before it was asked anything`));
            return;
          }
          finish(undefined, msg.QMP as unknown as QmpGreeting);
        };
        socket.on('data', onData);
        socket.on('error', onError);
        socket.on('close', onClose);
      });
    } catch (e) {
      socket.destroy();
      throw e;
    }
    const client = new QmpClient(socket, t, greeting, timeoutMs, splitter, options.onEvent);
    try {
      await client.execute('qmp_capabilities');
    } catch (e) {
      await client.close();
      throw e;
    }
    return client;
  }

  /** True once the connection is gone (closed by either side or failed). */
  get closed(): boolean {
    return this.closedBy !== undefined;
  }

  /**
   * Runs a QMP command and resolves to its `return` value. Rejects with a {@link QmpError}: reason
   * `error-reply` (message includes QEMU's `desc`), `timeout`, or `closed`.
   */
  execute(
    command: string,
    args?: Record<string, unknown>,
    options: QmpExecuteOptions = {},
  ): Promise<unknown> {
    if (this.closedBy) {
      return Promise.reject(
        new QmpError('closed', `cannot send '${command}': ${this.closedBy.message}`, {
          desc: this.closedBy.desc,
        }),
      );
    }
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpError('timeout', `QEMU did not answer '${command}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve, reject, timer });
      const request =
        args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.socket.write(`${JSON.stringify(request)}\n`);
    });
  }

  /**
   * Runs a human monitor (HMP) command line, e.g. `info mtree -f`, and resolves to its output with
   * every `\r\n` turned into `\n` (the monitor adds the `\r`; the fixtures store the text without it).
   */
  async hmp(commandLine: string, options: QmpExecuteOptions = {}): Promise<string> {
    const out = await this.execute('human-monitor-command', { 'command-line': commandLine }, options);
    if (typeof out !== 'string') {
      throw new QmpError('protocol', `human-monitor-command '${commandLine}' returned a non-string`);
    }
    return out.replace(/\r\n/g, '\n');
  }

  /** Closes the connection (QEMU keeps running) and fails any command still waiting. */
  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), 2000);
    await this.closedPromise;
    clearTimeout(timer);
  }

  private dispatch(text: string, onEvent: ((e: QmpEvent) => void) | undefined): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.fail(new QmpError('protocol', `invalid JSON from QMP at ${describeTarget(this.target)}`));
      this.socket.destroy();
      return;
    }
    if (!isObject(msg)) return;
    if (typeof msg.event === 'string') {
      onEvent?.(msg as unknown as QmpEvent);
      return;
    }
    let id = typeof msg.id === 'number' ? msg.id : undefined;
    // An error without an id answers a request QEMU could not parse; replies come in order, so it is
    // the oldest one waiting.
    if (id === undefined && 'error' in msg) id = this.pending.keys().next().value;
    if (id === undefined) return;
    const p = this.pending.get(id);
    if (!p) return; // a late reply to a command that already timed out
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('return' in msg) {
      p.resolve(msg.return);
    } else if (isObject(msg.error)) {
      const qmpClass = typeof msg.error.class === 'string' ? msg.error.class : 'unknown';
      const desc = typeof msg.error.desc === 'string' ? msg.error.desc : '(no description)';
      p.reject(new QmpError('error-reply', `QEMU refused '${p.command}': ${desc}`, { qmpClass, desc }));
    } else {
      p.reject(new QmpError('protocol', `QEMU's reply to '${p.command}' has neither return nor error`));
    }
  }

  private fail(err: QmpError): void {
    if (!this.closedBy) this.closedBy = err;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(
        new QmpError(err.reason, `no answer to '${p.command}': ${err.message}`, {
          desc: err.desc,
        }),
      );
    }
  }
}
