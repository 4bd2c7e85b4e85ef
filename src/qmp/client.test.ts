/**
 * @module qmp/client.test
 * The QMP client's framing, ids, timeouts and failures, against a tiny QMP-speaking server on a Unix
 * socket. The server only mimics QMP's wire format (greeting, `\r\n`-terminated JSON, ids, events);
 * what QEMU really answers is checked by test/qmp-live.test.ts against the real binary.
 */

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsonObjectSplitter, parseQmpTarget, QmpClient, type QmpEvent } from './client.js';
import { QmpError } from './errors.js';

const GREETING = {
  QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: 'test' }, capabilities: ['oob'] },
};

type Request = { execute: string; arguments?: Record<string, unknown>; id?: unknown };

/** Starts a server on a fresh socket path; `onRequest` answers each parsed request. */
async function qmpServer(
  onRequest: (req: Request, sock: Socket) => void,
  { greet = true } = {},
): Promise<{ path: string; server: Server; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'memtree-qmp-test-'));
  const path = join(dir, 's');
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.setEncoding('utf8');
    if (greet) sock.write(`${JSON.stringify(GREETING)}\r\n`);
    let buf = '';
    sock.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) onRequest(JSON.parse(line) as Request, sock);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path,
    server,
    async cleanup() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const send = (sock: Socket, msg: unknown) => sock.write(`${JSON.stringify(msg)}\r\n`);

test('connects, negotiates, matches replies by id, skips events, and turns \\r\\n into \\n', async (t) => {
  const seen: Request[] = [];
  const srv = await qmpServer((req, sock) => {
    seen.push(req);
    if (req.execute === 'qmp_capabilities') return send(sock, { return: {}, id: req.id });
    if (req.execute === 'human-monitor-command') {
      // An event first, then the reply cut into pieces with the event-like text inside the string.
      send(sock, { event: 'STOP', timestamp: { seconds: 1, microseconds: 2 } });
      const text = JSON.stringify({
        return: `line {1}\r\n"quoted" \\ x\r\n\r\n`,
        id: req.id,
      });
      sock.write(text.slice(0, 7));
      setTimeout(() => sock.write(`${text.slice(7)}\r\n`), 5);
      return;
    }
    send(sock, { return: { echo: req.execute }, id: req.id });
  });
  t.after(() => srv.cleanup());
  const events: QmpEvent[] = [];
  const client = await QmpClient.connect(srv.path, { onEvent: (e) => events.push(e) });
  t.after(() => client.close());
  assert.equal(client.greeting.version.qemu.major, 7);
  assert.deepEqual(seen[0], { execute: 'qmp_capabilities', id: 1 });

  const text = await client.hmp('info mtree');
  // QEMU's monitor adds \r before each \n; the fixtures (and hmp()) have plain \n.
  assert.equal(text, 'line {1}\n"quoted" \\ x\n\n');
  assert.deepEqual(seen[1], {
    execute: 'human-monitor-command',
    arguments: { 'command-line': 'info mtree' },
    id: 2,
  });
  assert.deepEqual(
    events.map((e) => e.event),
    ['STOP'],
  );
  assert.deepEqual(await client.execute('query-name'), { echo: 'query-name' });
});

test('replies are matched by id even when they come out of order', async (t) => {
  const held: Request[] = [];
  const srv = await qmpServer((req, sock) => {
    if (req.execute === 'qmp_capabilities') return send(sock, { return: {}, id: req.id });
    held.push(req);
    if (held.length === 2) {
      sock.write(
        `${JSON.stringify({ return: 'second', id: held[1]!.id })}\r\n${JSON.stringify({ return: 'first', id: held[0]!.id })}\r\n`,
      );
    }
  });
  t.after(() => srv.cleanup());
  const client = await QmpClient.connect({ path: srv.path });
  t.after(() => client.close());
  const [a, b] = await Promise.all([client.execute('a'), client.execute('b')]);
  assert.equal(a, 'first');
  assert.equal(b, 'second');
});

test("an error reply is a QmpError carrying QEMU's class and desc", async (t) => {
  const srv = await qmpServer((req, sock) => {
    if (req.execute === 'qmp_capabilities') return send(sock, { return: {}, id: req.id });
    send(sock, {
      error: { class: 'CommandNotFound', desc: 'The command nosuch has not been found' },
      id: req.id,
    });
  });
  t.after(() => srv.cleanup());
  const client = await QmpClient.connect(srv.path);
  t.after(() => client.close());
  await assert.rejects(client.execute('nosuch'), (e: unknown) => {
    assert.ok(e instanceof QmpError);
    assert.equal(e.code, 'ERR_QMP');
    assert.equal(e.reason, 'error-reply');
    assert.equal(e.qmpClass, 'CommandNotFound');
    assert.match(e.message, /The command nosuch has not been found/);
    return true;
  });
});

test('no answer within the timeout rejects that command only; a late reply is dropped', async (t) => {
  let silent: Request | undefined;
  const srv = await qmpServer((req, sock) => {
    if (req.execute === 'qmp_capabilities') return send(sock, { return: {}, id: req.id });
    if (req.execute === 'slow') {
      silent = req;
      return;
    }
    // Answer the stale command first, then this one.
    if (silent) send(sock, { return: 'stale', id: silent.id });
    send(sock, { return: 'fresh', id: req.id });
  });
  t.after(() => srv.cleanup());
  const client = await QmpClient.connect(srv.path);
  t.after(() => client.close());
  await assert.rejects(client.execute('slow', undefined, { timeoutMs: 50 }), (e: unknown) => {
    assert.ok(e instanceof QmpError);
    assert.equal(e.reason, 'timeout');
    assert.match(e.message, /'slow'/);
    return true;
  });
  assert.equal(await client.execute('next'), 'fresh');
});

test('a server that never greets times out', async (t) => {
  const srv = await qmpServer(() => {}, { greet: false });
  t.after(() => srv.cleanup());
  await assert.rejects(QmpClient.connect(srv.path, { timeoutMs: 50 }), {
    code: 'ERR_QMP',
    reason: 'timeout',
  });
});

test('QEMU hanging up fails the commands waiting and any later one', async (t) => {
  const srv = await qmpServer((req, sock) => {
    if (req.execute === 'qmp_capabilities') return send(sock, { return: {}, id: req.id });
    sock.destroy();
  });
  t.after(() => srv.cleanup());
  const client = await QmpClient.connect(srv.path);
  await assert.rejects(client.execute('quit'), { code: 'ERR_QMP', reason: 'closed' });
  await assert.rejects(client.execute('again'), { code: 'ERR_QMP', reason: 'closed' });
  assert.equal(client.closed, true);
  await client.close();
});

test('hanging up before the greeting is "closed"', async (t) => {
  const srv = await qmpServer(() => {}, { greet: false });
  srv.server.on('connection', (s) => s.destroy());
  t.after(() => srv.cleanup());
  await assert.rejects(QmpClient.connect(srv.path), { code: 'ERR_QMP', reason: 'closed' });
});

test('a missing socket is "not-found", a dead one "refused"', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'memtree-qmp-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await assert.rejects(QmpClient.connect(join(dir, 'none')), (e: unknown) => {
    assert.ok(e instanceof QmpError);
    assert.equal(e.reason, 'not-found');
    assert.match(e.message, /none/);
    return true;
  });
  // A path that exists but has no listener behind it (here a plain file) refuses the connection.
  await writeFile(join(dir, 'file'), '');
  await assert.rejects(QmpClient.connect(join(dir, 'file')), { code: 'ERR_QMP', reason: 'refused' });
});

test('a TCP port nobody listens on is "refused"', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  await assert.rejects(QmpClient.connect(`127.0.0.1:${port}`), { code: 'ERR_QMP', reason: 'refused' });
});

test('a server that is not QMP is a protocol error', async (t) => {
  const srv = await qmpServer(() => {}, { greet: false });
  srv.server.on('connection', (s) => s.write('220 smtp.example ESMTP\r\n'));
  t.after(() => srv.cleanup());
  await assert.rejects(QmpClient.connect(srv.path), { code: 'ERR_QMP', reason: 'protocol' });
});

test('the splitter cuts concatenated and pretty-printed objects, whatever the chunking', () => {
  const objs = [{ a: '}{"\\' }, { b: [1, { c: 2 }], d: 'x\ny' }, { return: {} }];
  const wire = `${JSON.stringify(objs[0])}\r\n${JSON.stringify(objs[1], null, 4)}\r\n${JSON.stringify(objs[2])}\r\n`;
  for (const size of [1, 2, 3, 7, wire.length]) {
    const s = new JsonObjectSplitter();
    const got: unknown[] = [];
    for (let i = 0; i < wire.length; i += size) {
      for (const text of s.push(wire.slice(i, i + size))) got.push(JSON.parse(text));
    }
    assert.deepEqual(got, objs, `chunk size ${size}`);
  }
});

test('QMP addresses: paths, unix:, tcp: and host:port', () => {
  assert.deepEqual(parseQmpTarget('/tmp/q.sock'), { path: '/tmp/q.sock' });
  assert.deepEqual(parseQmpTarget('q.sock'), { path: 'q.sock' });
  assert.deepEqual(parseQmpTarget('unix:/tmp/a:1'), { path: '/tmp/a:1' });
  assert.deepEqual(parseQmpTarget('./a:1'), { path: './a:1' });
  assert.deepEqual(parseQmpTarget('localhost:4444'), { host: 'localhost', port: 4444 });
  assert.deepEqual(parseQmpTarget('tcp:127.0.0.1:4444'), { host: '127.0.0.1', port: 4444 });
  assert.deepEqual(parseQmpTarget('tcp:[::1]:4444'), { host: '::1', port: 4444 });
});

test('a peer streaming one endless JSON message fails the connection once it passes the cap', async (t) => {
  let streamed = 0;
  const srv = await qmpServer((req, sock) => {
    if (req.execute === 'qmp_capabilities') return send(sock, { return: {}, id: req.id });
    // An answer that never ends: one open string, 64 KiB at a time, for as long as the peer reads.
    sock.write('{"return": "');
    const chunk = 'a'.repeat(65536);
    const pump = () => {
      while (!sock.destroyed && streamed < 64 * 1024 * 1024) {
        streamed += chunk.length;
        if (!sock.write(chunk)) return void sock.once('drain', pump);
      }
    };
    pump();
  });
  t.after(() => srv.cleanup());
  const c = await QmpClient.connect(srv.path, { maxMessageLength: 1 << 20 });
  t.after(() => c.close());
  await assert.rejects(c.hmp('info mtree'), (e: unknown) => {
    assert.ok(e instanceof QmpError);
    assert.equal(e.reason, 'protocol');
    assert.match(e.message, /longer than 1048576 characters/);
    return true;
  });
  // It stopped reading long before the server ran out of data.
  assert.ok(streamed < 64 * 1024 * 1024, `read ${streamed} bytes`);
  assert.ok(c.closed);
});

test('the splitter refuses an object longer than its cap, also across many small chunks', () => {
  const s = new JsonObjectSplitter(100);
  assert.deepEqual(s.push('{"a": 1}'), ['{"a": 1}']);
  s.push('{"b": "');
  assert.throws(() => {
    for (let i = 0; i < 50; i++) s.push('0123456789');
  }, /longer than 100 characters/);
});
