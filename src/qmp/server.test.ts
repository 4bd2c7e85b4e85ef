/**
 * The QMP server against what QEMU 7.2 says: protocol texts copied from a live
 * `qemu-system-x86_64 -qmp unix:...` session (and compared with a live one when QEMU is present),
 * and memory-map answers compared with the shared fixtures QEMU recorded.
 */

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { runCli } from '../../test/support/run-cli.js';
import { startViewerServer } from '../cli/commands/serve.js';
import { MemorySystem } from '../core/system.js';
import { compareMtreeText } from '../mtree/compare.js';
import { parseFlatText, parseMtreeText } from '../mtree/parse.js';
import { rebuild } from '../mtree/rebuild.js';
import { QmpClient } from './client.js';
import { parseSocketSpec, type QmpMachine, QmpServer } from './server.js';

const FIX = '../shared/fixtures/qemu-7.2/pc-512m';

function toyMachine(): QmpMachine & { calls: string[] } {
  const ms = new MemorySystem();
  const system = ms.container('system', 2n ** 64n - 1n);
  system.addSubregion(0, ms.ram('toy.ram', 0x10000));
  ms.addressSpace(system, 'memory');
  const calls: string[] = [];
  return {
    ms,
    machineType: 'toy',
    calls,
    start: () => calls.push('start'),
    stop: () => calls.push('stop'),
    reset: () => calls.push('reset'),
    quit: () => calls.push('quit'),
  };
}

function tmp(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'memtree-qmpsrv-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Sends raw lines one at a time and returns every message received, parsed, in order. */
async function rawSession(path: string, lines: string[]): Promise<Array<Record<string, unknown>>> {
  const s = createConnection(path);
  s.setEncoding('utf8');
  let buf = '';
  s.on('data', (d: string) => {
    buf += d;
  });
  const count = () => buf.split('\r\n').filter((l) => l !== '').length;
  const waitFor = async (n: number) => {
    for (let i = 0; i < 400 && count() < n; i++) await new Promise((r) => setTimeout(r, 10));
  };
  await waitFor(1);
  let expected = 1;
  for (const l of lines) {
    s.write(l);
    expected++;
    await waitFor(expected);
    // events come before the reply that caused them: give them time to arrive too
    await new Promise((r) => setTimeout(r, 20));
    expected = count();
  }
  s.end();
  assert.ok(buf.endsWith('\r\n'), 'every QMP message ends with CRLF');
  return buf
    .split('\r\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

const PROBE = [
  '{"execute":"query-status","id":0}',
  '{"execute":"qmp_capabilities","id":1}',
  '{"execute":"qmp_capabilities"}',
  '{"execute":"foo","id":"x"}',
  'nonsense\n',
  '{"id":3}',
  '[1]',
  '{"execute":"query-status","id":4}',
  '{"execute":"human-monitor-command","id":5}',
  '{"execute":"human-monitor-command","arguments":{"command-line":"info status","x":1},"id":6}',
  '{"execute":"human-monitor-command","arguments":{"command-line":"info status"},"id":7}',
  '{"execute":"human-monitor-command","arguments":{"command-line":"bar"},"id":9}',
  '{"execute":"query-migrate","id":10}',
  '{"execute":"cont","id":11}',
  '{"execute":"stop","id":12}',
  '{"execute":"stop","id":13}',
  '{"execute":"system_reset","id":14}',
  '{"execute":"human-monitor-command","arguments":{"command-line":"info status"},"id":15}',
  '{"execute":"query-status","arguments":[],"id":18}',
  '{"execute":"migrate","arguments":{"uri":"foo:bar"},"id":19}',
  '{"execute":"migrate_set_capabilities","id":20}',
  '{"execute":"migrate-start-postcopy","id":21}',
];

/** What QEMU 7.2 answered to PROBE when started with -S (copied from a live session; timestamps dropped). */
const QEMU_ANSWERS = [
  { QMP: { version: { qemu: '*' }, capabilities: ['oob'] } },
  {
    id: 0,
    error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
  },
  { return: {}, id: 1 },
  {
    error: {
      class: 'CommandNotFound',
      desc: 'Capabilities negotiation is already complete, command ignored',
    },
  },
  { id: 'x', error: { class: 'CommandNotFound', desc: 'The command foo has not been found' } },
  { error: { class: 'GenericError', desc: "JSON parse error, invalid keyword 'nonsense'" } },
  { id: 3, error: { class: 'GenericError', desc: "QMP input lacks member 'execute'" } },
  { error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } },
  { return: { status: 'prelaunch', singlestep: false, running: false }, id: 4 },
  { id: 5, error: { class: 'GenericError', desc: "Parameter 'command-line' is missing" } },
  { id: 6, error: { class: 'GenericError', desc: "Parameter 'x' is unexpected" } },
  { return: 'VM status: paused (prelaunch)\r\n', id: 7 },
  { return: "unknown command: 'bar'\r\n", id: 9 },
  { return: {}, id: 10 },
  { event: 'RESUME' },
  { return: {}, id: 11 },
  { event: 'STOP' },
  { return: {}, id: 12 },
  { return: {}, id: 13 },
  { event: 'RESET', data: { guest: false, reason: 'host-qmp-system-reset' } },
  { return: {}, id: 14 },
  { return: 'VM status: paused (prelaunch)\r\n', id: 15 },
  { id: 18, error: { class: 'GenericError', desc: "QMP input member 'arguments' must be an object" } },
  { id: 19, error: { class: 'GenericError', desc: "Parameter 'uri' expects a valid migration protocol" } },
  {
    id: 20,
    error: { class: 'CommandNotFound', desc: 'The command migrate_set_capabilities has not been found' },
  },
  {
    id: 21,
    error: {
      class: 'GenericError',
      desc: 'Enable postcopy with migrate_set_capability before the start of migration',
    },
  },
];

/** A message with what cannot be equal between two runs (timestamps, versions) normalised. */
function normalise(m: Record<string, unknown>): Record<string, unknown> {
  const out = { ...m };
  if ('timestamp' in out) {
    const ts = out.timestamp as { seconds: unknown; microseconds: unknown };
    assert.equal(typeof ts.seconds, 'number');
    assert.equal(typeof ts.microseconds, 'number');
    delete out.timestamp;
  }
  if ('QMP' in out) {
    const q = out.QMP as {
      version: { qemu: Record<string, number>; package: string };
      capabilities: string[];
    };
    assert.deepEqual(Object.keys(q.version.qemu).sort(), ['major', 'micro', 'minor']);
    assert.equal(typeof q.version.package, 'string');
    out.QMP = { version: { qemu: '*' }, capabilities: q.capabilities };
  }
  return out;
}

test('protocol: the answers QEMU 7.2 gives, message for message, key order included', async (t) => {
  const dir = tmp(t);
  const m = toyMachine();
  const server = new QmpServer(m, { initialState: 'prelaunch' });
  t.after(() => server.close());
  await server.listen(`unix:${join(dir, 'q.sock')},server=on,wait=off`);
  const got = await rawSession(join(dir, 'q.sock'), PROBE);
  assert.deepEqual(got.map(normalise), QEMU_ANSWERS);
  // key order as QEMU writes it: replies "return" then "id", errors "id" then "error"
  assert.deepEqual(Object.keys(got[2]!), ['return', 'id']);
  assert.deepEqual(Object.keys(got[1]!), ['id', 'error']);
  assert.deepEqual(Object.keys(got[14]!), ['timestamp', 'event']);
  assert.deepEqual(m.calls, ['start', 'stop', 'reset']);
});

test('protocol: a live QEMU 7.2 answers the probe as the server does', async (t) => {
  if (spawnSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' }).status !== 0) {
    if (process.env.CI) assert.fail('qemu-system-x86_64 missing; CI must run the live QMP comparison');
    t.skip('qemu-system-x86_64 is not on PATH');
    return;
  }
  const dir = tmp(t);
  const sock = join(dir, 'qemu.sock');
  const q = spawn(
    'qemu-system-x86_64',
    [
      '-M',
      'pc',
      '-m',
      '64M',
      '-nodefaults',
      '-S',
      '-display',
      'none',
      '-qmp',
      `unix:${sock},server=on,wait=off`,
    ],
    { stdio: 'ignore' },
  );
  t.after(() => q.kill('SIGKILL'));
  for (let i = 0; i < 300; i++) {
    try {
      readFileSync(sock);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const qemu = await rawSession(sock, PROBE);
  const server = new QmpServer(toyMachine(), { initialState: 'prelaunch' });
  t.after(() => server.close());
  await server.listen(`unix:${join(dir, 'ours.sock')}`);
  const ours = await rawSession(join(dir, 'ours.sock'), PROBE);
  assert.deepEqual(ours.map(normalise), qemu.map(normalise));
});

test('memtree qmp, QmpClient and info mtree against a machine rebuilt from QEMU dumps', async (t) => {
  const dir = tmp(t);
  const treeText = readFileSync(join(FIX, 'mtree-D.txt'), 'utf8');
  const flatText = readFileSync(join(FIX, 'flat.txt'), 'utf8');
  const { system: ms } = rebuild(parseMtreeText(treeText), parseFlatText(flatText));
  const m: QmpMachine = { ...toyMachine(), ms, machineType: 'pc' };
  const server = new QmpServer(m);
  t.after(() => server.close());
  const sock = join(dir, 'q.sock');
  await server.listen(`unix:${sock}`);

  const client = await QmpClient.connect(sock, { timeoutMs: 10_000 });
  try {
    assert.deepEqual(client.greeting.capabilities, ['oob']);
    const flat = await client.hmp('info mtree -f');
    const r1 = compareMtreeText(flat, flatText);
    assert.ok(r1.equal, r1.firstDifference);
    const tree = await client.hmp('info mtree -D');
    const r2 = compareMtreeText(tree, treeText);
    assert.ok(r2.equal, r2.firstDifference);
    assert.deepEqual(await client.execute('query-status'), {
      status: 'running',
      singlestep: false,
      running: true,
    });
  } finally {
    await client.close();
  }
  // The CLI, unchanged, on the same socket (one client at a time, as QEMU).
  const r = await runCli(['qmp', sock, 'flat']);
  assert.equal(r.code, 0, r.err);
  const r3 = compareMtreeText(r.out, flatText);
  assert.ok(r3.equal, r3.firstDifference);
  const h = await runCli(['qmp', sock, 'hmp', 'info bogus']);
  assert.equal(h.code, 1);
  assert.match(h.err, /unknown command: 'info bogus'/);
  // memtree serve --qmp reads it as it reads a QEMU (the page itself is not needed for the API).
  const viewer = await startViewerServer({ dumps: [], port: 0, host: '127.0.0.1', qmp: sock, root: dir });
  try {
    const res = await fetch(`${viewer.url.replace(/\/$/, '')}/api/qmp`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { mtree: string; flat: string };
    const r4 = compareMtreeText(body.flat, flatText);
    assert.ok(r4.equal, r4.firstDifference);
    const r5 = compareMtreeText(body.mtree, treeText);
    assert.ok(r5.equal, r5.firstDifference);
  } finally {
    await viewer.close();
  }
});

test('one client at a time: the second greeting comes when the first client leaves', async (t) => {
  const dir = tmp(t);
  const server = new QmpServer(toyMachine());
  t.after(() => server.close());
  const sock = join(dir, 'q.sock');
  await server.listen(`unix:${sock}`);
  const a = await QmpClient.connect(sock, { timeoutMs: 5000 });
  let second: QmpClient | undefined;
  const pending = QmpClient.connect(sock, { timeoutMs: 5000 }).then((c) => {
    second = c;
    return c;
  });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(second, undefined);
  await a.close();
  const b = await pending;
  assert.deepEqual(await b.execute('query-version'), {
    qemu: { micro: 0, minor: 2, major: 7 },
    package: 'memtree',
  });
  await b.close();
});

test('quit answers, sends SHUTDOWN, then quits the machine', async (t) => {
  const dir = tmp(t);
  const m = toyMachine();
  const server = new QmpServer(m);
  t.after(() => server.close());
  await server.listen(`unix:${join(dir, 'q.sock')}`);
  const events: string[] = [];
  const c = await QmpClient.connect(join(dir, 'q.sock'), { onEvent: (e) => events.push(e.event) });
  assert.deepEqual(await c.execute('quit'), {});
  await c.close();
  assert.deepEqual(events, ['SHUTDOWN']);
  assert.deepEqual(m.calls, ['quit']);
});

test('socket specs: QEMU syntax, loopback by default, bad ones refused', () => {
  assert.deepEqual(parseSocketSpec('unix:/tmp/a,,b.sock,server=on,wait=off'), { path: '/tmp/a,b.sock' });
  assert.deepEqual(parseSocketSpec('tcp::4444'), { host: '127.0.0.1', port: 4444 });
  assert.deepEqual(parseSocketSpec('tcp:[::1]:5'), { host: '::1', port: 5 });
  assert.throws(() => parseSocketSpec('tcp:host'), /not unix:PATH or tcp:HOST:PORT/);
  assert.throws(() => parseSocketSpec('unix:/x,bogus=1'), /unsupported socket option/);
});

test('a guest power-off is announced as QEMU does: SHUTDOWN with guest true, reason guest-shutdown', async (t) => {
  const dir = tmp(t);
  const server = new QmpServer(toyMachine());
  t.after(() => server.close());
  await server.listen(`unix:${join(dir, 'q.sock')}`);
  const events: Array<{ event: string; data?: unknown }> = [];
  const c = await QmpClient.connect(join(dir, 'q.sock'), { onEvent: (e) => events.push(e) });
  server.guestShutdown();
  assert.deepEqual(await c.execute('query-status'), {
    status: 'shutdown',
    singlestep: false,
    running: false,
  });
  await c.close();
  assert.deepEqual(
    events.map((e) => [e.event, e.data]),
    [['SHUTDOWN', { guest: true, reason: 'guest-shutdown' }]],
  );
});
