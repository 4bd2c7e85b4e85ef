/**
 * @module test/viewer.e2e
 * End-to-end tests of the web viewer: the page is built with Vite into a temporary directory,
 * served by `memtree serve`'s server (in-process, port 0) with two QEMU fixture dumps, and driven in
 * Debian's headless Chromium through playwright-core: load a dump, expand the tree, search, look an
 * address up, zoom, paste a third dump, switch to a diff, and show a running QEMU over QMP.
 * Screenshots go to test-artifacts/. Expected answers are read off the fixtures' `info mtree` text.
 *
 * Without /usr/bin/chromium the browser tests are skipped (and fail when CI is set).
 */

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { readDumps, startViewerServer, type ViewerServer } from '../src/cli/commands/serve.js';
import { processIo } from '../src/cli/main.js';
import { MemorySystem } from '../src/core/system.js';
import { formatFlat, formatMtree } from '../src/mtree/print.js';
import { sharedFixture } from './support/shared-fixtures.js';

// The shared dumps; without them this file fails at once with one message naming the folder.
const FIX = sharedFixture();
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve('test-artifacts');
const haveChromium = existsSync(CHROMIUM);
const NOP = { read: () => 0, write: () => {} };
const haveQemu = ['/usr/bin/qemu-system-x86_64', '/usr/local/bin/qemu-system-x86_64'].some((p) =>
  existsSync(p),
);

if (!haveChromium) {
  const msg = `viewer e2e: ${CHROMIUM} is missing (apt-get install chromium); browser tests skipped`;
  if (process.env.CI) throw new Error(msg);
  process.stderr.write(`${msg}\n`);
}

let outDir = '';
let server: ViewerServer;
let browser: Browser;

/** Builds the page once, into a private directory (so a concurrent `npm run build:viewer` is harmless). */
async function buildPage(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'memtree-viewer-'));
  const { build } = await import('vite');
  await build({
    configFile: resolve('viewer.vite.config.ts'),
    logLevel: 'warn',
    build: { outDir: dir, emptyOutDir: true, sourcemap: false },
  });
  return dir;
}

async function launch(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

async function open(url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  assert.deepEqual(errors, [], 'no script errors while loading');
  return page;
}

function shot(page: Page, name: string): Promise<Buffer> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Raw GET with a chosen Host header (fetch does not let us set it). */
function get(url: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const u = new URL(url);
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname, headers: host ? { host } : {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', fail);
    req.end();
  });
}

before(async () => {
  outDir = await buildPage();
  const dumps = await readDumps([`${FIX}/pc-512m`, `${FIX}/pc-prog`], processIo);
  server = await startViewerServer({ dumps, port: 0, host: '127.0.0.1', root: outDir });
  if (haveChromium) browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

describe('memtree serve: the HTTP side', () => {
  it('listens on loopback and lists the dumps given on the command line', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const list = JSON.parse((await get(`${server.url}api/dumps`)).body);
    assert.deepEqual(list, {
      dumps: [
        { id: 'pc-512m', label: 'pc-512m' },
        { id: 'pc-prog', label: 'pc-prog' },
      ],
      qmp: null,
    });
    const d = JSON.parse((await get(`${server.url}api/dumps/pc-512m`)).body);
    assert.equal(d.mtree, readFileSync(`${FIX}/pc-512m/mtree-D.txt`, 'utf8'));
    assert.equal(d.flat, readFileSync(`${FIX}/pc-512m/flat.txt`, 'utf8'));
  });

  it('pairs a flat dump file with the tree dump before it, and refuses a lone flat dump', async () => {
    const d = await readDumps([`${FIX}/pc-4g/mtree-D.txt`, `${FIX}/pc-4g/flat.txt`], processIo);
    assert.equal(d.length, 1);
    // A capture folder's mtree-D.txt is named after the folder, and so is its URL name.
    assert.equal(d[0]!.label, 'pc-4g');
    assert.equal(d[0]!.id, 'pc-4g');
    assert.match(d[0]!.flat!, /^FlatView #/);
    await assert.rejects(readDumps([`${FIX}/pc-4g/flat.txt`], processIo), /info mtree -D/);
  });

  it('serves the built page and nothing outside it', async () => {
    const index = await get(server.url);
    assert.equal(index.status, 200);
    assert.match(index.body, /<title>memtree/);
    assert.equal((await get(`${server.url}api/qmp`)).status, 404);
    assert.notEqual((await get(`${server.url}..%2f..%2fpackage.json`)).status, 200);
    // A page on another site that resolves its name to 127.0.0.1 (DNS rebinding) is refused.
    assert.equal((await get(server.url, 'evil.example:80')).status, 403);
  });
});

describe('the viewer page in Chromium', { skip: !haveChromium }, () => {
  it('shows the first served dump: address spaces, flat map, region tree', async () => {
    const page = await open(server.url);
    assert.equal(await page.inputValue('#machine'), 'pc-512m');
    // pc-512m prints "address-space: cpu-memory-0" and "address-space: memory" over one tree.
    assert.match((await page.textContent('.tab.active'))!, /cpu-memory-0, memory/);
    const tabs = await page.locator('.tab').allTextContents();
    assert.ok(tabs.some((t) => t.startsWith('I/O')));
    // flat.txt of pc-512m has 8 ranges for memory; the gaps between them are 5 holes.
    assert.match((await page.textContent('#ranges-title'))!, /8 ranges, 5 holes/);
    const canvasHeight = await page.$eval('#map', (c) => (c as HTMLCanvasElement).height);
    assert.ok(canvasHeight > 100, 'the map is drawn');
    await page.close();
  });

  it('expands the tree, searches it, looks an address up, zooms, and saves a screenshot', async () => {
    const page = await open(server.url);
    const labels = () => page.locator('#tree .tree-row .label').allTextContents();
    assert.ok(!(await labels()).includes('isa-bios'), 'pci starts collapsed');
    await page
      .locator('#tree .tree-row', { hasText: /^.*pci\s*0x0+–0xffff/ })
      .locator('.twisty')
      .click();
    // mtree-D.txt: pci contains pc.rom, isa-bios (alias @pc.bios) and pc.bios.
    const open1 = await labels();
    for (const n of ['pc.rom', 'isa-bios', 'pc.bios']) assert.ok(open1.includes(n), `${n} shown`);

    // mtree-D.txt has two regions whose names contain "apic", both directly in system.
    await page.fill('#search', 'apic');
    assert.deepEqual(await labels(), ['system', 'ioapic', 'apic-msi']);
    assert.match((await page.textContent('#tree-status'))!, /2 matches/);
    await page.fill('#search', '');

    // The reset vector: pc.bios sits at 0xfffc0000-0xffffffff in pci, and nothing of higher
    // priority covers it, so 0xfffffff0 is byte 0x3fff0 of pc.bios, reached via system > pci.
    await page.fill('#address', '0xfffffff0');
    await page.press('#address', 'Enter');
    await page.waitForSelector('#answer[data-region="pc.bios"]');
    assert.equal(await page.getAttribute('#answer', 'data-offset'), '0x3fff0');
    const chain = await page.locator('#answer .chain li').allTextContents();
    assert.deepEqual(
      chain.map((t) => t.split(' ')[0]),
      ['system', 'pci', 'pc.bios'],
    );
    assert.match((await page.textContent('#tree .tree-row.selected'))!, /pc\.bios/);

    // 0xe0000 is served by pc.bios from offset 0x20000 (flat.txt), through the isa-bios alias.
    await page.fill('#address', '0xe0010');
    await page.press('#address', 'Enter');
    await page.waitForSelector('#answer[data-region="pc.bios"][data-offset="0x20010"]');
    assert.match(
      (await page.textContent('#answer'))!,
      /isa-bios — alias, at 0xe0000, priority 1, → pc\.bios from its offset 0x20000/,
    );

    // A hole: flat.txt has nothing between 0x20000000 and 0xfebfffff.
    await page.fill('#address', '0x30000000');
    await page.press('#address', 'Enter');
    await page.waitForSelector('#answer[data-region=""]');
    assert.match((await page.textContent('#answer'))!, /nothing answers here/);

    // Clicking the map looks up the address under the pointer: the first piece is pc.ram (0-0xbffff).
    const box = (await page.locator('#map').boundingBox())!;
    await page.mouse.click(box.x + 12, box.y + box.height - 34 - 23);
    await page.waitForSelector('#answer[data-region="pc.ram"]');

    const whole = await page.textContent('#viewport');
    assert.match(whole!, /^0x0 – 0xffffffffffffffff/);
    await page.click('#zoom-in');
    assert.notEqual(await page.textContent('#viewport'), whole);
    await page.click('#zoom-all');
    assert.equal(await page.textContent('#viewport'), whole);

    await page.fill('#address', '0xfee00000');
    await page.press('#address', 'Enter');
    await page.waitForSelector('#answer[data-region="apic-msi"]');
    await shot(page, 'viewer-lookup');
    await page.close();
  });

  it('rebuilds a pasted dump in the page', async () => {
    const page = await open(server.url);
    const text = `${readFileSync(`${FIX}/pc-4g/mtree-D.txt`, 'utf8')}${readFileSync(`${FIX}/pc-4g/flat.txt`, 'utf8')}`;
    await page.click('#open');
    await page.fill('#load-label', 'pc-4g pasted');
    await page.fill('#load-text', text);
    await page.click('#load-ok');
    await page.waitForFunction(
      () => document.querySelector<HTMLSelectElement>('#machine')?.value === 'pasted:1',
    );
    // pc-4g: ram-above-4g maps pc.ram from offset 0xc0000000 at 4 GiB.
    await page.fill('#address', '0x100000000');
    await page.press('#address', 'Enter');
    await page.waitForSelector('#answer[data-region="pc.ram"][data-offset="0xc0000000"]');
    assert.match((await page.textContent('#answer'))!, /ram-above-4g/);

    await page.click('#open');
    await page.fill('#load-text', 'this is not a dump');
    await page.click('#load-ok');
    assert.match((await page.textContent('#load-error'))!, /info mtree -D/);
    await page.close();
  });

  it('diffs two dumps: what appeared, vanished, moved or changed size', async () => {
    const page = await open(server.url);
    await page.selectOption('#diff', 'pc-prog');
    await page.waitForSelector('body[data-diff="on"]');
    // memory of pc-512m has pc.ram 0x100000-0x1fffffff; pc-prog (1 GiB) has 0x100000-0x3fffffff
    // with the same "pc.ram @0000000000100000": resized. pc-prog's VGA BAR puts vga.vram at
    // 0xc0000000, which pc-512m does not have: appeared.
    const resized = await page.locator('.range-row.ch-resized').allTextContents();
    assert.ok(
      resized.some((t) => t.includes('pc.ram') && t.includes('was 511 MiB')),
      resized.join('\n'),
    );
    const appeared = await page.locator('.range-row.ch-appeared').allTextContents();
    assert.ok(
      appeared.some((t) => t.includes('vga.vram') && t.startsWith('0xc0000000')),
      appeared.join('\n'),
    );
    assert.match((await page.textContent('#ranges-title'))!, /Changes from A to B/);
    await shot(page, 'viewer-diff');
    await page.selectOption('#diff', '');
    await page.waitForSelector('body[data-diff="off"]');
    await page.close();
  });

  it('in diff mode answers an address for both machines and lists the address spaces of one only', async () => {
    // Readable URL names: #m= and #diff= take the dump names the server gives.
    const page = await open(`${server.url}#m=pc-512m&diff=pc-prog&as=memory&addr=0x30000000`);
    assert.equal(await page.inputValue('#machine'), 'pc-512m');
    assert.equal(await page.inputValue('#diff'), 'pc-prog');
    // 0x30000000: pc-512m's RAM ends at 0x1fffffff (a hole there); pc-prog has 1 GiB, so it is
    // pc.ram's byte 0x30000000 (flat.txt: 0000000000100000-000000003fffffff pc.ram @100000).
    await page.waitForSelector('#answer[data-region=""]');
    await page.waitForSelector('#answer-b[data-region="pc.ram"][data-offset="0x30000000"]');
    assert.match((await page.textContent('#answer-b'))!, /^B: pc-prog/);
    // pc-prog adds a VGA, an e1000, a virtio-net and an ivshmem device, each with its own
    // bus-master address space (mtree-D.txt); pc-512m has none that pc-prog lacks.
    await page.waitForSelector('#diff-spaces:not([hidden])');
    assert.equal(await page.textContent('#diff-spaces .only-a'), 'none');
    const onlyB = (await page.textContent('#diff-spaces .only-b'))!.split(', ').sort();
    assert.deepEqual(onlyB, ['VGA', 'e1000', 'ivshmem-plain', 'virtio-net-pci']);
    // Addresses in the URL and the address box are plain hex that QEMU and the CLI read back.
    assert.match(await page.evaluate(() => location.hash), /addr=0x30000000(&|$)/);
    assert.equal(await page.inputValue('#address'), '0x30000000');
    await page.close();
  });

  it('at 1100 px wide, in diff mode, clips no tab, no region name and no change label', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(`${server.url}#m=pc-512m&diff=pc-prog&as=memory`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForSelector('.range-row.ch-appeared');
    const clipped = await page.evaluate(() => {
      const out: string[] = [];
      for (const t of document.querySelectorAll<HTMLElement>('.tab')) {
        if (t.getBoundingClientRect().right > window.innerWidth) out.push(`tab ${t.textContent} off screen`);
      }
      // (No named helper functions in here: tsx would wrap them in a __name the page lacks.)
      for (const sel of [
        '#tree .tree-name > .label',
        '#ranges .range-row .what',
        '#ranges .range-row > span.mono',
      ]) {
        for (const el of document.querySelectorAll<HTMLElement>(sel)) {
          if (el.scrollWidth > el.clientWidth) out.push(`${sel}: "${el.textContent}" cut`);
        }
      }
      return out;
    });
    assert.deepEqual(clipped, []);
    // The lanes of pc-512m's memory: ram-below-4g, pam/smram aliases, ioapic, hpet, apic-msi and
    // pci: a label is written whole, in its box or in the free lane space beside it, or not at all.
    const lanes = (await page.getAttribute('#map', 'data-lane-labels'))!.split('\n');
    // (ioapic's 4 KiB box sits too close to hpet's at this width: it goes without a label.)
    for (const l of ['ram-below-4g → pc.ram', 'pam-pci → pci (prio 1)', 'hpet', 'apic-msi (prio 4096)']) {
      assert.ok(lanes.includes(l), `lane label ${l} missing from ${JSON.stringify(lanes)}`);
    }
    assert.ok(!lanes.some((l) => l.includes('…')), `a cut lane label: ${JSON.stringify(lanes)}`);
    await shot(page, 'viewer-diff-1100');
    await page.close();
  });

  it('says when its re-render of a dump disagrees with the flat dump given with it', async () => {
    const page = await open(server.url);
    assert.equal(await page.isVisible('#notice'), false);
    // The tree of the 4 GiB PC with the flat view of the 512 MiB one: pc.ram's range differs.
    const text = `${readFileSync(`${FIX}/pc-4g/mtree-D.txt`, 'utf8')}${readFileSync(`${FIX}/pc-512m/flat.txt`, 'utf8')}`;
    await page.click('#open');
    await page.fill('#load-label', 'mixed');
    await page.fill('#load-text', text);
    await page.click('#load-ok');
    await page.waitForSelector('#notice:not([hidden])');
    assert.match((await page.textContent('#notice'))!, /do not render to the flat view given with it/);
    await page.selectOption('#machine', 'pc-512m');
    await page.waitForSelector('#notice[hidden]', { state: 'attached' });
    await page.close();
  });

  it('opens the 64 KiB I/O space from the URL', async () => {
    const page = await open(`${server.url}#m=pc-512m&as=I%2FO&addr=0x3f8`);
    assert.match((await page.textContent('.tab.active'))!, /^I\/O/);
    assert.equal(await page.textContent('#viewport'), '0x0 – 0xffff (64 KiB)');
    // flat.txt of pc-512m's I/O space has no device at 0x3f8: the io region itself answers there.
    await page.waitForSelector('#answer[data-region="io"]');
    await page.close();
  });

  it('keeps a machine with thousands of regions usable: the tree only draws what is in view', async () => {
    // 4000 devices of 4 KiB each, side by side from 0x10000000, in a 2^64 container.
    const ms = new MemorySystem();
    const sys = ms.container('system', 1n << 64n);
    ms.transaction(() => {
      for (let i = 0; i < 4000; i++) sys.addSubregion(0x10000000 + i * 0x1000, ms.io(`dev${i}`, 0x1000, NOP));
    });
    ms.addressSpace(sys, 'memory');
    const page = await open(server.url);
    await page.click('#open');
    // Through the dialog's file input this time (typing 600 KB into the text box is slow).
    const dump = `${formatMtree(ms, { disabled: true })}${formatFlat(ms)}`;
    await page.setInputFiles('#load-file', {
      name: 'big.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from(dump),
    });
    await page.waitForFunction(
      () => document.querySelector<HTMLTextAreaElement>('#load-text')!.value.length > 0,
    );
    assert.equal(await page.inputValue('#load-label'), 'big.txt');
    await page.click('#load-ok');
    await page.waitForFunction(
      () => document.querySelector<HTMLSelectElement>('#machine')?.value === 'pasted:1',
    );
    assert.match((await page.textContent('#tree-status'))!, /4001 regions/);
    const rows = await page.locator('#tree .tree-row').count();
    assert.ok(rows < 200, `${rows} row elements for 4001 regions`);
    // The last device is reachable by search and by address.
    await page.fill('#search', 'dev3999');
    assert.deepEqual(await page.locator('#tree .tree-row .label').allTextContents(), ['system', 'dev3999']);
    await page.fill('#address', '0x10f9f004');
    await page.press('#address', 'Enter');
    await page.waitForSelector('#answer[data-region="dev3999"][data-offset="0x4"]');
    await page.close();
  });
});

describe('memtree serve --qmp with a running QEMU', { skip: !haveChromium || !haveQemu }, () => {
  it('shows the live machine and reads it again on Refresh', async () => {
    const { startQemu } = await import('../src/qmp/capture.js');
    const qemu = await startQemu(['qemu-system-x86_64', '-nodefaults', '-M', 'pc', '-m', '256M']);
    let live: ViewerServer | null = null;
    try {
      // QEMU serves one QMP client at a time: the server connects for each refresh.
      await qemu.client.close();
      live = await startViewerServer({
        dumps: [],
        port: 0,
        host: '127.0.0.1',
        qmp: qemu.socketPath,
        root: outDir,
      });
      const page = await open(live.url);
      assert.equal(await page.inputValue('#machine'), 'qmp');
      // Named after the machine type QEMU reports, not the socket path.
      const label = await page.$eval('#machine', (el) => (el as HTMLSelectElement).selectedOptions[0]!.text);
      assert.match(label, /^pc-i440fx-\d+\.\d+ \(live QEMU\)$/);
      assert.equal(await page.isVisible('#refresh'), true);
      // -m 256M: ram-below-4g covers 0-0xfffffff, so 0xffffff0 is in pc.ram.
      await page.fill('#address', '0xffffff0');
      await page.press('#address', 'Enter');
      await page.waitForSelector('#answer[data-region="pc.ram"][data-offset="0xffffff0"]');
      await page.click('#refresh');
      await page.waitForSelector('#answer[data-region="pc.ram"]');
      await page.close();
    } finally {
      await live?.close();
      await qemu.dispose();
    }
  });
});

describe('memtree run --serve: a machine running in the server process', { skip: !haveChromium }, () => {
  it('shows its address spaces and the pages written since the last refresh', async () => {
    const { attachViewer } = await import('../src/cli/commands/run-serve.js');
    const { buildRiscvVirt } = await import('../src/machines/riscv/virt.js');
    const m = buildRiscvVirt({ ramSize: 128 * 2 ** 20 });
    const live = await attachViewer(m, '127.0.0.1:0', { root: outDir });
    try {
      const page = await open(live.url);
      assert.equal(await page.inputValue('#machine'), 'live');
      assert.equal(await page.isVisible('#refresh'), true);
      // The first reading: RAM starts out dirty (QEMU's ram_block_add), all 32768 pages of 128 MiB.
      await page.waitForSelector('#live:not([hidden])');
      const first = (await page.textContent('#live'))!;
      assert.match(first, /riscv_virt_board\.ram: 32,768 of 32,768 pages/);
      assert.match(first, /0x80000000–0x87ffffff/);
      // A write into one page at 0x80300000 (a device's, through the machine's address space).
      m.memory.stqLe(0x80300010, 0x1122334455667788n);
      await page.click('#refresh');
      await page.waitForFunction(() =>
        /1 of 32,768 pages/.test(document.getElementById('live')!.textContent!),
      );
      const second = (await page.textContent('#live'))!;
      assert.match(second, /riscv_virt_board\.ram: 1 of 32,768 pages/);
      assert.match(second, /0x80300000–0x80300fff/);
      assert.match(second, /virt\.flash0: 0 of 8,192 pages/);
      // The address spaces of the machine, as info mtree lists them.
      const tabs = await page.$$eval('.tab', (els) => els.map((e) => e.firstChild!.textContent));
      assert.ok(
        tabs.some((t) => t?.includes('memory')),
        tabs.join(' | '),
      );
      await page.click('#live a[data-addr]');
      await page.waitForSelector('#answer[data-region="riscv_virt_board.ram"][data-offset="0x300000"]');
      await shot(page, 'live-riscv-virt');
      await page.close();
    } finally {
      await live.close();
    }
  });
});
